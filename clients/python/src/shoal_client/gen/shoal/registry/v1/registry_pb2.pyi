from shoal_client._bufvalidate import validate_pb2 as _validate_pb2
from shoal_client._googleapi import annotations_pb2 as _annotations_pb2
from shoal_client._googleapi import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from shoal_client.gen.shoal.auth.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

ALIAS_EVENT_TYPE_CURRENT: AliasEventType
ALIAS_EVENT_TYPE_DELETED: AliasEventType
ALIAS_EVENT_TYPE_SET: AliasEventType
ALIAS_EVENT_TYPE_SYNCED: AliasEventType
ALIAS_EVENT_TYPE_UNSPECIFIED: AliasEventType
DESCRIPTOR: _descriptor.FileDescriptor
JPEG_DECODE_DCT_SCALED: JpegDecode
JPEG_DECODE_FULL: JpegDecode
JPEG_DECODE_UNSPECIFIED: JpegDecode
RESIZE_MODE_CENTER_CROP: ResizeMode
RESIZE_MODE_LETTERBOX: ResizeMode
RESIZE_MODE_STRETCH: ResizeMode
RESIZE_MODE_UNSPECIFIED: ResizeMode
ROLLOUT_PHASE_DONE: RolloutPhase
ROLLOUT_PHASE_FAILED: RolloutPhase
ROLLOUT_PHASE_IN_PROGRESS: RolloutPhase
ROLLOUT_PHASE_NOT_FOLLOWED: RolloutPhase
ROLLOUT_PHASE_UNSPECIFIED: RolloutPhase
SERVING_STATE_FAILED: ServingState
SERVING_STATE_LOADING: ServingState
SERVING_STATE_NOT_FOLLOWING: ServingState
SERVING_STATE_PENDING: ServingState
SERVING_STATE_RETRYING: ServingState
SERVING_STATE_SERVING: ServingState
SERVING_STATE_UNSPECIFIED: ServingState
TENSOR_LAYOUT_NCHW: TensorLayout
TENSOR_LAYOUT_NHWC: TensorLayout
TENSOR_LAYOUT_UNSPECIFIED: TensorLayout

class Alias(_message.Message):
    __slots__ = ["alias", "model", "update_time", "version"]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    alias: str
    model: str
    update_time: _timestamp_pb2.Timestamp
    version: int
    def __init__(self, model: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[int] = ..., update_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AliasServing(_message.Message):
    __slots__ = ["alias", "error", "model", "state", "target_version", "version"]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TARGET_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    alias: str
    error: str
    model: str
    state: ServingState
    target_version: int
    version: int
    def __init__(self, model: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[int] = ..., target_version: _Optional[int] = ..., state: _Optional[_Union[ServingState, str]] = ..., error: _Optional[str] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ["blob_key", "format", "sha256", "size_bytes"]
    BLOB_KEY_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    blob_key: str
    format: str
    sha256: str
    size_bytes: int
    def __init__(self, sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., format: _Optional[str] = ..., blob_key: _Optional[str] = ...) -> None: ...

class ClassMetrics(_message.Message):
    __slots__ = ["f1", "label", "precision", "recall", "support"]
    F1_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    f1: float
    label: str
    precision: float
    recall: float
    support: int
    def __init__(self, label: _Optional[str] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1: _Optional[float] = ..., support: _Optional[int] = ...) -> None: ...

class CompareVersionsRequest(_message.Message):
    __slots__ = ["a", "b", "model"]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    a: int
    b: int
    model: str
    def __init__(self, model: _Optional[str] = ..., a: _Optional[int] = ..., b: _Optional[int] = ...) -> None: ...

class CompareVersionsResponse(_message.Message):
    __slots__ = ["a", "b", "deltas"]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    DELTAS_FIELD_NUMBER: _ClassVar[int]
    a: Version
    b: Version
    deltas: _containers.RepeatedCompositeFieldContainer[MetricDelta]
    def __init__(self, a: _Optional[_Union[Version, _Mapping]] = ..., b: _Optional[_Union[Version, _Mapping]] = ..., deltas: _Optional[_Iterable[_Union[MetricDelta, _Mapping]]] = ...) -> None: ...

class ConfusionMatrix(_message.Message):
    __slots__ = ["counts", "size"]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    size: int
    def __init__(self, counts: _Optional[_Iterable[int]] = ..., size: _Optional[int] = ...) -> None: ...

class CreateModelRequest(_message.Message):
    __slots__ = ["description", "labels", "name"]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    description: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    name: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateModelResponse(_message.Message):
    __slots__ = ["model"]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class CreateVersionRequest(_message.Message):
    __slots__ = ["chunk", "spec"]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    spec: VersionSpec
    def __init__(self, spec: _Optional[_Union[VersionSpec, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class CreateVersionResponse(_message.Message):
    __slots__ = ["version"]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: Version
    def __init__(self, version: _Optional[_Union[Version, _Mapping]] = ...) -> None: ...

class DeleteAliasRequest(_message.Message):
    __slots__ = ["alias", "model"]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    alias: str
    model: str
    def __init__(self, model: _Optional[str] = ..., alias: _Optional[str] = ...) -> None: ...

class DeleteAliasResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class DeleteVersionRequest(_message.Message):
    __slots__ = ["model", "version"]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: int
    def __init__(self, model: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class DeleteVersionResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class DownloadArtifactRequest(_message.Message):
    __slots__ = ["model", "version"]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: int
    def __init__(self, model: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class DownloadArtifactResponse(_message.Message):
    __slots__ = ["chunk", "sha256", "size_bytes"]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    sha256: str
    size_bytes: int
    def __init__(self, chunk: _Optional[bytes] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ["model"]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ["alias", "model", "version"]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    alias: str
    model: str
    version: int
    def __init__(self, model: _Optional[str] = ..., version: _Optional[int] = ..., alias: _Optional[str] = ...) -> None: ...

class GetVersionResponse(_message.Message):
    __slots__ = ["version"]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: Version
    def __init__(self, version: _Optional[_Union[Version, _Mapping]] = ...) -> None: ...

class InputSpec(_message.Message):
    __slots__ = ["channels", "height", "input_name", "jpeg_decode", "layout", "mean", "output_is_probabilities", "output_name", "resize_mode", "std", "width"]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    INPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    JPEG_DECODE_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_IS_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    RESIZE_MODE_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    channels: int
    height: int
    input_name: str
    jpeg_decode: JpegDecode
    layout: TensorLayout
    mean: _containers.RepeatedScalarFieldContainer[float]
    output_is_probabilities: bool
    output_name: str
    resize_mode: ResizeMode
    std: _containers.RepeatedScalarFieldContainer[float]
    width: int
    def __init__(self, channels: _Optional[int] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., resize_mode: _Optional[_Union[ResizeMode, str]] = ..., mean: _Optional[_Iterable[float]] = ..., std: _Optional[_Iterable[float]] = ..., layout: _Optional[_Union[TensorLayout, str]] = ..., input_name: _Optional[str] = ..., output_name: _Optional[str] = ..., output_is_probabilities: bool = ..., jpeg_decode: _Optional[_Union[JpegDecode, str]] = ...) -> None: ...

class Lineage(_message.Message):
    __slots__ = ["dataset", "job_id", "parent", "snapshot_version"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_VERSION_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    job_id: str
    parent: VersionRef
    snapshot_version: int
    def __init__(self, dataset: _Optional[str] = ..., snapshot_version: _Optional[int] = ..., job_id: _Optional[str] = ..., parent: _Optional[_Union[VersionRef, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ["page_size", "page_token"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ["models", "next_page_token"]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ["alias", "descending", "min_test_accuracy", "model", "page_size", "page_token"]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    MIN_TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    alias: str
    descending: bool
    min_test_accuracy: float
    model: str
    page_size: int
    page_token: str
    def __init__(self, model: _Optional[str] = ..., alias: _Optional[str] = ..., min_test_accuracy: _Optional[float] = ..., descending: bool = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ["next_page_token", "versions"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    versions: _containers.RepeatedCompositeFieldContainer[Version]
    def __init__(self, versions: _Optional[_Iterable[_Union[Version, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class MetricDelta(_message.Message):
    __slots__ = ["a", "b", "delta", "name"]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    a: float
    b: float
    delta: float
    name: str
    def __init__(self, name: _Optional[str] = ..., a: _Optional[float] = ..., b: _Optional[float] = ..., delta: _Optional[float] = ...) -> None: ...

class Metrics(_message.Message):
    __slots__ = ["confusion_matrix", "per_class", "test_accuracy", "test_examples", "test_loss", "val_accuracy", "val_loss"]
    CONFUSION_MATRIX_FIELD_NUMBER: _ClassVar[int]
    PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TEST_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    TEST_LOSS_FIELD_NUMBER: _ClassVar[int]
    VAL_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    VAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    confusion_matrix: ConfusionMatrix
    per_class: _containers.RepeatedCompositeFieldContainer[ClassMetrics]
    test_accuracy: float
    test_examples: int
    test_loss: float
    val_accuracy: float
    val_loss: float
    def __init__(self, val_accuracy: _Optional[float] = ..., val_loss: _Optional[float] = ..., test_accuracy: _Optional[float] = ..., test_loss: _Optional[float] = ..., per_class: _Optional[_Iterable[_Union[ClassMetrics, _Mapping]]] = ..., confusion_matrix: _Optional[_Union[ConfusionMatrix, _Mapping]] = ..., test_examples: _Optional[int] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ["aliases", "create_time", "description", "labels", "latest_version", "name"]
    class AliasesEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    aliases: _containers.ScalarMap[str, int]
    create_time: _timestamp_pb2.Timestamp
    description: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    latest_version: int
    name: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., latest_version: _Optional[int] = ..., aliases: _Optional[_Mapping[str, int]] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReplicaRollout(_message.Message):
    __slots__ = ["error", "replica", "serving_version", "state"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    SERVING_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    error: str
    replica: str
    serving_version: int
    state: ServingState
    def __init__(self, replica: _Optional[str] = ..., state: _Optional[_Union[ServingState, str]] = ..., serving_version: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class ReportServingRequest(_message.Message):
    __slots__ = ["aliases", "lease", "leaving", "replica"]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    LEAVING_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    aliases: _containers.RepeatedCompositeFieldContainer[AliasServing]
    lease: _duration_pb2.Duration
    leaving: bool
    replica: str
    def __init__(self, replica: _Optional[str] = ..., aliases: _Optional[_Iterable[_Union[AliasServing, _Mapping]]] = ..., lease: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., leaving: bool = ...) -> None: ...

class ReportServingResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class SetAliasRequest(_message.Message):
    __slots__ = ["alias", "model", "version"]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    alias: str
    model: str
    version: int
    def __init__(self, model: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class SetAliasResponse(_message.Message):
    __slots__ = ["alias"]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    alias: Alias
    def __init__(self, alias: _Optional[_Union[Alias, _Mapping]] = ...) -> None: ...

class Version(_message.Message):
    __slots__ = ["aliases", "architecture", "artifact", "create_time", "creator", "description", "hyper_parameters", "input_spec", "labels", "lineage", "metrics", "model", "version"]
    class HyperParametersEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATOR_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HYPER_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    INPUT_SPEC_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    aliases: _containers.RepeatedScalarFieldContainer[str]
    architecture: str
    artifact: Artifact
    create_time: _timestamp_pb2.Timestamp
    creator: str
    description: str
    hyper_parameters: _containers.ScalarMap[str, str]
    input_spec: InputSpec
    labels: _containers.RepeatedScalarFieldContainer[str]
    lineage: Lineage
    metrics: Metrics
    model: str
    version: int
    def __init__(self, model: _Optional[str] = ..., version: _Optional[int] = ..., artifact: _Optional[_Union[Artifact, _Mapping]] = ..., input_spec: _Optional[_Union[InputSpec, _Mapping]] = ..., labels: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., hyper_parameters: _Optional[_Mapping[str, str]] = ..., lineage: _Optional[_Union[Lineage, _Mapping]] = ..., architecture: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., creator: _Optional[str] = ..., description: _Optional[str] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VersionRef(_message.Message):
    __slots__ = ["model", "version"]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: int
    def __init__(self, model: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class VersionSpec(_message.Message):
    __slots__ = ["architecture", "artifact_sha256", "artifact_size_bytes", "creator", "description", "hyper_parameters", "input_spec", "labels", "lineage", "metrics", "model"]
    class HyperParametersEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_SHA256_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATOR_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HYPER_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    INPUT_SPEC_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    architecture: str
    artifact_sha256: str
    artifact_size_bytes: int
    creator: str
    description: str
    hyper_parameters: _containers.ScalarMap[str, str]
    input_spec: InputSpec
    labels: _containers.RepeatedScalarFieldContainer[str]
    lineage: Lineage
    metrics: Metrics
    model: str
    def __init__(self, model: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., input_spec: _Optional[_Union[InputSpec, _Mapping]] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., hyper_parameters: _Optional[_Mapping[str, str]] = ..., lineage: _Optional[_Union[Lineage, _Mapping]] = ..., architecture: _Optional[str] = ..., creator: _Optional[str] = ..., description: _Optional[str] = ..., artifact_size_bytes: _Optional[int] = ..., artifact_sha256: _Optional[str] = ...) -> None: ...

class WatchAliasesRequest(_message.Message):
    __slots__ = ["model"]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class WatchAliasesResponse(_message.Message):
    __slots__ = ["alias", "revision", "type"]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    alias: Alias
    revision: int
    type: AliasEventType
    def __init__(self, type: _Optional[_Union[AliasEventType, str]] = ..., alias: _Optional[_Union[Alias, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class WatchRolloutRequest(_message.Message):
    __slots__ = ["alias", "model", "version"]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    alias: str
    model: str
    version: int
    def __init__(self, model: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class WatchRolloutResponse(_message.Message):
    __slots__ = ["alias", "model", "phase", "replicas", "version"]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    alias: str
    model: str
    phase: RolloutPhase
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaRollout]
    version: int
    def __init__(self, model: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[int] = ..., phase: _Optional[_Union[RolloutPhase, str]] = ..., replicas: _Optional[_Iterable[_Union[ReplicaRollout, _Mapping]]] = ...) -> None: ...

class TensorLayout(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class ResizeMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class JpegDecode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class AliasEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class ServingState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class RolloutPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

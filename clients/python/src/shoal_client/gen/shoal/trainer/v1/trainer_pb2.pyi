from shoal_client._bufvalidate import validate_pb2 as _validate_pb2
from shoal_client._googleapi import annotations_pb2 as _annotations_pb2
from shoal_client._googleapi import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from shoal_client.gen.shoal.auth.v1 import options_pb2 as _options_pb2
from shoal_client.gen.shoal.registry.v1 import registry_pb2 as _registry_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

BATCH_NORM_FROZEN: BatchNorm
BATCH_NORM_UNSPECIFIED: BatchNorm
BATCH_NORM_UPDATE: BatchNorm
DESCRIPTOR: _descriptor.FileDescriptor
JOB_STATE_CANCELLED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_UNSPECIFIED: JobState
LEARNING_RATE_SCHEDULE_CONSTANT: LearningRateSchedule
LEARNING_RATE_SCHEDULE_COSINE: LearningRateSchedule
LEARNING_RATE_SCHEDULE_STEP: LearningRateSchedule
LEARNING_RATE_SCHEDULE_UNSPECIFIED: LearningRateSchedule
OPTIMIZER_ADAM: Optimizer
OPTIMIZER_ADAMW: Optimizer
OPTIMIZER_SGD: Optimizer
OPTIMIZER_UNSPECIFIED: Optimizer
PROMOTION_POLICY_ALWAYS: PromotionPolicy
PROMOTION_POLICY_IF_BETTER: PromotionPolicy
PROMOTION_POLICY_NEVER: PromotionPolicy
PROMOTION_POLICY_UNSPECIFIED: PromotionPolicy
TRAIN_LAYERS_ALL: TrainLayers
TRAIN_LAYERS_HEAD: TrainLayers
TRAIN_LAYERS_LAST_STAGES: TrainLayers
TRAIN_LAYERS_UNSPECIFIED: TrainLayers

class Architecture(_message.Message):
    __slots__ = ["default_channels", "default_image_size", "description", "min_image_size", "name", "parameters"]
    DEFAULT_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MIN_IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    default_channels: int
    default_image_size: int
    description: str
    min_image_size: int
    name: str
    parameters: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., default_image_size: _Optional[int] = ..., min_image_size: _Optional[int] = ..., default_channels: _Optional[int] = ..., parameters: _Optional[int] = ...) -> None: ...

class Augmentation(_message.Message):
    __slots__ = ["color_jitter", "crop_min_scale", "horizontal_flip", "vertical_flip"]
    COLOR_JITTER_FIELD_NUMBER: _ClassVar[int]
    CROP_MIN_SCALE_FIELD_NUMBER: _ClassVar[int]
    HORIZONTAL_FLIP_FIELD_NUMBER: _ClassVar[int]
    VERTICAL_FLIP_FIELD_NUMBER: _ClassVar[int]
    color_jitter: float
    crop_min_scale: float
    horizontal_flip: bool
    vertical_flip: bool
    def __init__(self, horizontal_flip: bool = ..., vertical_flip: bool = ..., crop_min_scale: _Optional[float] = ..., color_jitter: _Optional[float] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ["job_id"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ["job"]
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class EpochMetrics(_message.Message):
    __slots__ = ["best", "duration", "epoch", "images_per_second", "learning_rate", "train_accuracy", "train_loss", "val_accuracy", "val_loss"]
    BEST_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    IMAGES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    VAL_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    VAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    best: bool
    duration: _duration_pb2.Duration
    epoch: int
    images_per_second: float
    learning_rate: float
    train_accuracy: float
    train_loss: float
    val_accuracy: float
    val_loss: float
    def __init__(self, epoch: _Optional[int] = ..., train_loss: _Optional[float] = ..., train_accuracy: _Optional[float] = ..., val_loss: _Optional[float] = ..., val_accuracy: _Optional[float] = ..., learning_rate: _Optional[float] = ..., images_per_second: _Optional[float] = ..., duration: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., best: bool = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ["job_id"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ["job"]
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ["create_time", "end_time", "epochs", "error", "id", "last_sequence", "result", "spec", "start_time", "state", "test_metrics"]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TEST_METRICS_FIELD_NUMBER: _ClassVar[int]
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    epochs: _containers.RepeatedCompositeFieldContainer[EpochMetrics]
    error: str
    id: str
    last_sequence: int
    result: _registry_pb2.VersionRef
    spec: JobSpec
    start_time: _timestamp_pb2.Timestamp
    state: JobState
    test_metrics: _registry_pb2.Metrics
    def __init__(self, id: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., error: _Optional[str] = ..., epochs: _Optional[_Iterable[_Union[EpochMetrics, _Mapping]]] = ..., test_metrics: _Optional[_Union[_registry_pb2.Metrics, _Mapping]] = ..., result: _Optional[_Union[_registry_pb2.VersionRef, _Mapping]] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., last_sequence: _Optional[int] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ["architecture", "augmentation", "backbone_learning_rate_scale", "backend", "base_version", "batch_norm", "batch_size", "channels", "dataset", "early_stopping_patience", "epochs", "image_size", "learning_rate", "model", "optimizer", "promotion", "schedule", "seed", "snapshot_version", "train_layers", "unfrozen_stages", "validation_fraction", "warmup_epochs", "weight_decay"]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    AUGMENTATION_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_LEARNING_RATE_SCALE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    BATCH_NORM_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    EARLY_STOPPING_PATIENCE_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LAYERS_FIELD_NUMBER: _ClassVar[int]
    UNFROZEN_STAGES_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FRACTION_FIELD_NUMBER: _ClassVar[int]
    WARMUP_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    architecture: str
    augmentation: Augmentation
    backbone_learning_rate_scale: float
    backend: str
    base_version: _registry_pb2.VersionRef
    batch_norm: BatchNorm
    batch_size: int
    channels: int
    dataset: str
    early_stopping_patience: int
    epochs: int
    image_size: int
    learning_rate: float
    model: str
    optimizer: Optimizer
    promotion: PromotionPolicy
    schedule: LearningRateSchedule
    seed: int
    snapshot_version: int
    train_layers: TrainLayers
    unfrozen_stages: int
    validation_fraction: float
    warmup_epochs: int
    weight_decay: float
    def __init__(self, dataset: _Optional[str] = ..., snapshot_version: _Optional[int] = ..., model: _Optional[str] = ..., architecture: _Optional[str] = ..., image_size: _Optional[int] = ..., channels: _Optional[int] = ..., epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., schedule: _Optional[_Union[LearningRateSchedule, str]] = ..., optimizer: _Optional[_Union[Optimizer, str]] = ..., weight_decay: _Optional[float] = ..., validation_fraction: _Optional[float] = ..., augmentation: _Optional[_Union[Augmentation, _Mapping]] = ..., seed: _Optional[int] = ..., base_version: _Optional[_Union[_registry_pb2.VersionRef, _Mapping]] = ..., early_stopping_patience: _Optional[int] = ..., promotion: _Optional[_Union[PromotionPolicy, str]] = ..., backend: _Optional[str] = ..., train_layers: _Optional[_Union[TrainLayers, str]] = ..., unfrozen_stages: _Optional[int] = ..., backbone_learning_rate_scale: _Optional[float] = ..., warmup_epochs: _Optional[int] = ..., batch_norm: _Optional[_Union[BatchNorm, str]] = ...) -> None: ...

class ListArchitecturesRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListArchitecturesResponse(_message.Message):
    __slots__ = ["architectures", "defaults"]
    ARCHITECTURES_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    architectures: _containers.RepeatedCompositeFieldContainer[Architecture]
    defaults: JobSpec
    def __init__(self, architectures: _Optional[_Iterable[_Union[Architecture, _Mapping]]] = ..., defaults: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ["dataset", "page_size", "page_token", "state"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    page_size: int
    page_token: str
    state: JobState
    def __init__(self, state: _Optional[_Union[JobState, str]] = ..., dataset: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ["jobs", "next_page_token"]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ["level", "message"]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    level: str
    message: str
    def __init__(self, level: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class StartTrainingRequest(_message.Message):
    __slots__ = ["spec"]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...

class StartTrainingResponse(_message.Message):
    __slots__ = ["job"]
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class StateChange(_message.Message):
    __slots__ = ["reason", "state"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    state: JobState
    def __init__(self, state: _Optional[_Union[JobState, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class StepProgress(_message.Message):
    __slots__ = ["epoch", "epochs", "eta", "images_per_second", "step", "steps", "train_loss"]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    IMAGES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    epochs: int
    eta: _duration_pb2.Duration
    images_per_second: float
    step: int
    steps: int
    train_loss: float
    def __init__(self, epoch: _Optional[int] = ..., epochs: _Optional[int] = ..., step: _Optional[int] = ..., steps: _Optional[int] = ..., train_loss: _Optional[float] = ..., images_per_second: _Optional[float] = ..., eta: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ["after_sequence", "job_id"]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    after_sequence: int
    job_id: str
    def __init__(self, job_id: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class WatchJobResponse(_message.Message):
    __slots__ = ["epoch", "evaluation", "log", "progress", "registered", "sequence", "state", "time"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    epoch: EpochMetrics
    evaluation: _registry_pb2.Metrics
    log: LogLine
    progress: StepProgress
    registered: _registry_pb2.VersionRef
    sequence: int
    state: StateChange
    time: _timestamp_pb2.Timestamp
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[StateChange, _Mapping]] = ..., progress: _Optional[_Union[StepProgress, _Mapping]] = ..., epoch: _Optional[_Union[EpochMetrics, _Mapping]] = ..., log: _Optional[_Union[LogLine, _Mapping]] = ..., evaluation: _Optional[_Union[_registry_pb2.Metrics, _Mapping]] = ..., registered: _Optional[_Union[_registry_pb2.VersionRef, _Mapping]] = ...) -> None: ...

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class Optimizer(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class LearningRateSchedule(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class PromotionPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class TrainLayers(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class BatchNorm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

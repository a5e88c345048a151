from shoal_client._bufvalidate import validate_pb2 as _validate_pb2
from shoal_client._googleapi import annotations_pb2 as _annotations_pb2
from shoal_client._googleapi import field_behavior_pb2 as _field_behavior_pb2
from shoal_client._googleapi import httpbody_pb2 as _httpbody_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from shoal_client.gen.shoal.auth.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
IMAGE_FORMAT_BMP: ImageFormat
IMAGE_FORMAT_GIF: ImageFormat
IMAGE_FORMAT_JPEG: ImageFormat
IMAGE_FORMAT_PNG: ImageFormat
IMAGE_FORMAT_UNSPECIFIED: ImageFormat
IMAGE_FORMAT_WEBP: ImageFormat
SPLIT_TEST: Split
SPLIT_TRAIN: Split
SPLIT_UNSPECIFIED: Split
SPLIT_VALIDATION: Split

class ArchiveChunk(_message.Message):
    __slots__ = ["data", "file_name"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    file_name: str
    def __init__(self, file_name: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class CreateDatasetRequest(_message.Message):
    __slots__ = ["description", "name"]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    description: str
    name: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class CreateDatasetResponse(_message.Message):
    __slots__ = ["dataset"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ...) -> None: ...

class CreateSnapshotRequest(_message.Message):
    __slots__ = ["dataset", "description", "reuse_unchanged"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REUSE_UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    description: str
    reuse_unchanged: bool
    def __init__(self, dataset: _Optional[str] = ..., description: _Optional[str] = ..., reuse_unchanged: bool = ...) -> None: ...

class CreateSnapshotResponse(_message.Message):
    __slots__ = ["reused", "snapshot"]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    reused: bool
    snapshot: Snapshot
    def __init__(self, snapshot: _Optional[_Union[Snapshot, _Mapping]] = ..., reused: bool = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ["create_time", "description", "image_count", "labels", "name", "snapshot_count", "update_time"]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_COUNT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    create_time: _timestamp_pb2.Timestamp
    description: str
    image_count: int
    labels: _containers.RepeatedScalarFieldContainer[str]
    name: str
    snapshot_count: int
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., image_count: _Optional[int] = ..., labels: _Optional[_Iterable[str]] = ..., snapshot_count: _Optional[int] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteDatasetResponse(_message.Message):
    __slots__ = ["blobs_deleted", "images_deleted"]
    BLOBS_DELETED_FIELD_NUMBER: _ClassVar[int]
    IMAGES_DELETED_FIELD_NUMBER: _ClassVar[int]
    blobs_deleted: int
    images_deleted: int
    def __init__(self, images_deleted: _Optional[int] = ..., blobs_deleted: _Optional[int] = ...) -> None: ...

class FileRejection(_message.Message):
    __slots__ = ["path", "reason"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    path: str
    reason: str
    def __init__(self, path: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetDatasetResponse(_message.Message):
    __slots__ = ["dataset"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ...) -> None: ...

class GetDatasetStatsRequest(_message.Message):
    __slots__ = ["dataset", "snapshot_version"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_VERSION_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    snapshot_version: int
    def __init__(self, dataset: _Optional[str] = ..., snapshot_version: _Optional[int] = ...) -> None: ...

class GetDatasetStatsResponse(_message.Message):
    __slots__ = ["counts", "image_count", "sizes", "total_bytes"]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedCompositeFieldContainer[LabelCount]
    image_count: int
    sizes: _containers.RepeatedCompositeFieldContainer[SizeBucket]
    total_bytes: int
    def __init__(self, image_count: _Optional[int] = ..., counts: _Optional[_Iterable[_Union[LabelCount, _Mapping]]] = ..., sizes: _Optional[_Iterable[_Union[SizeBucket, _Mapping]]] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class GetImageContentRequest(_message.Message):
    __slots__ = ["dataset", "image_id", "thumbnail_size"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_SIZE_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    image_id: str
    thumbnail_size: int
    def __init__(self, dataset: _Optional[str] = ..., image_id: _Optional[str] = ..., thumbnail_size: _Optional[int] = ...) -> None: ...

class GetImageContentResponse(_message.Message):
    __slots__ = ["body"]
    BODY_FIELD_NUMBER: _ClassVar[int]
    body: _httpbody_pb2.HttpBody
    def __init__(self, body: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class GetImageRequest(_message.Message):
    __slots__ = ["dataset", "image_id"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    image_id: str
    def __init__(self, dataset: _Optional[str] = ..., image_id: _Optional[str] = ...) -> None: ...

class GetImageResponse(_message.Message):
    __slots__ = ["image"]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    image: Image
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class GetSnapshotRequest(_message.Message):
    __slots__ = ["dataset", "version"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    version: int
    def __init__(self, dataset: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetSnapshotResponse(_message.Message):
    __slots__ = ["snapshot"]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: Snapshot
    def __init__(self, snapshot: _Optional[_Union[Snapshot, _Mapping]] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ["create_time", "dataset", "file_name", "format", "height", "id", "label", "sha256", "size_bytes", "split", "url", "width"]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    create_time: _timestamp_pb2.Timestamp
    dataset: str
    file_name: str
    format: ImageFormat
    height: int
    id: str
    label: str
    sha256: str
    size_bytes: int
    split: Split
    url: str
    width: int
    def __init__(self, id: _Optional[str] = ..., dataset: _Optional[str] = ..., split: _Optional[_Union[Split, str]] = ..., label: _Optional[str] = ..., file_name: _Optional[str] = ..., sha256: _Optional[str] = ..., url: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., format: _Optional[_Union[ImageFormat, str]] = ..., size_bytes: _Optional[int] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ImportCounts(_message.Message):
    __slots__ = ["added", "conflicts", "duplicates", "rejected", "seen"]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    SEEN_FIELD_NUMBER: _ClassVar[int]
    added: int
    conflicts: int
    duplicates: int
    rejected: int
    seen: int
    def __init__(self, seen: _Optional[int] = ..., added: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[int] = ..., conflicts: _Optional[int] = ...) -> None: ...

class ImportImagesRequest(_message.Message):
    __slots__ = ["dataset", "local", "object_store"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    OBJECT_STORE_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    local: LocalSource
    object_store: ObjectStoreSource
    def __init__(self, dataset: _Optional[str] = ..., local: _Optional[_Union[LocalSource, _Mapping]] = ..., object_store: _Optional[_Union[ObjectStoreSource, _Mapping]] = ...) -> None: ...

class ImportImagesResponse(_message.Message):
    __slots__ = ["done", "progress", "rejection"]
    DONE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    done: ImportCounts
    progress: ImportProgress
    rejection: FileRejection
    def __init__(self, progress: _Optional[_Union[ImportProgress, _Mapping]] = ..., rejection: _Optional[_Union[FileRejection, _Mapping]] = ..., done: _Optional[_Union[ImportCounts, _Mapping]] = ...) -> None: ...

class ImportProgress(_message.Message):
    __slots__ = ["counts", "images_per_second", "total"]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    IMAGES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    counts: ImportCounts
    images_per_second: float
    total: int
    def __init__(self, counts: _Optional[_Union[ImportCounts, _Mapping]] = ..., total: _Optional[int] = ..., images_per_second: _Optional[float] = ...) -> None: ...

class LabelCount(_message.Message):
    __slots__ = ["count", "label", "split"]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    count: int
    label: str
    split: Split
    def __init__(self, split: _Optional[_Union[Split, str]] = ..., label: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ["page_size", "page_token"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ["datasets", "next_page_token"]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[Dataset]
    next_page_token: str
    def __init__(self, datasets: _Optional[_Iterable[_Union[Dataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListImagesRequest(_message.Message):
    __slots__ = ["dataset", "label", "page_size", "page_token", "snapshot_version", "split"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    label: str
    page_size: int
    page_token: str
    snapshot_version: int
    split: Split
    def __init__(self, dataset: _Optional[str] = ..., split: _Optional[_Union[Split, str]] = ..., label: _Optional[str] = ..., snapshot_version: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListImagesResponse(_message.Message):
    __slots__ = ["images", "next_page_token", "total_size"]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    next_page_token: str
    total_size: int
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class ListSnapshotsRequest(_message.Message):
    __slots__ = ["dataset", "page_size", "page_token"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    page_size: int
    page_token: str
    def __init__(self, dataset: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSnapshotsResponse(_message.Message):
    __slots__ = ["next_page_token", "snapshots"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    snapshots: _containers.RepeatedCompositeFieldContainer[Snapshot]
    def __init__(self, snapshots: _Optional[_Iterable[_Union[Snapshot, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class LocalSource(_message.Message):
    __slots__ = ["path"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class ObjectStoreSource(_message.Message):
    __slots__ = ["bucket", "prefix"]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ...) -> None: ...

class ReadSnapshotRequest(_message.Message):
    __slots__ = ["dataset", "include_content", "split", "version"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CONTENT_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    include_content: bool
    split: Split
    version: int
    def __init__(self, dataset: _Optional[str] = ..., version: _Optional[int] = ..., split: _Optional[_Union[Split, str]] = ..., include_content: bool = ...) -> None: ...

class ReadSnapshotResponse(_message.Message):
    __slots__ = ["content", "image"]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    image: Image
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ..., content: _Optional[bytes] = ...) -> None: ...

class SizeBucket(_message.Message):
    __slots__ = ["count", "max_pixels", "min_pixels"]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_PIXELS_FIELD_NUMBER: _ClassVar[int]
    MIN_PIXELS_FIELD_NUMBER: _ClassVar[int]
    count: int
    max_pixels: int
    min_pixels: int
    def __init__(self, min_pixels: _Optional[int] = ..., max_pixels: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ["counts", "create_time", "dataset", "description", "image_count", "manifest_sha256", "version"]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_SHA256_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedCompositeFieldContainer[LabelCount]
    create_time: _timestamp_pb2.Timestamp
    dataset: str
    description: str
    image_count: int
    manifest_sha256: str
    version: int
    def __init__(self, dataset: _Optional[str] = ..., version: _Optional[int] = ..., image_count: _Optional[int] = ..., counts: _Optional[_Iterable[_Union[LabelCount, _Mapping]]] = ..., manifest_sha256: _Optional[str] = ..., description: _Optional[str] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UploadFile(_message.Message):
    __slots__ = ["content", "file_name", "label", "split"]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    file_name: str
    label: str
    split: Split
    def __init__(self, split: _Optional[_Union[Split, str]] = ..., label: _Optional[str] = ..., file_name: _Optional[str] = ..., content: _Optional[bytes] = ...) -> None: ...

class UploadHeader(_message.Message):
    __slots__ = ["dataset"]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    def __init__(self, dataset: _Optional[str] = ...) -> None: ...

class UploadImagesRequest(_message.Message):
    __slots__ = ["archive_chunk", "file", "header"]
    ARCHIVE_CHUNK_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    archive_chunk: ArchiveChunk
    file: UploadFile
    header: UploadHeader
    def __init__(self, header: _Optional[_Union[UploadHeader, _Mapping]] = ..., file: _Optional[_Union[UploadFile, _Mapping]] = ..., archive_chunk: _Optional[_Union[ArchiveChunk, _Mapping]] = ...) -> None: ...

class UploadImagesResponse(_message.Message):
    __slots__ = ["counts", "rejections"]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    counts: ImportCounts
    rejections: _containers.RepeatedCompositeFieldContainer[FileRejection]
    def __init__(self, counts: _Optional[_Union[ImportCounts, _Mapping]] = ..., rejections: _Optional[_Iterable[_Union[FileRejection, _Mapping]]] = ...) -> None: ...

class Split(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class ImageFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

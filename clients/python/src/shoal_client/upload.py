"""Folder uploads: which files of a folder go where, as `shoal dataset upload` decides.

A folder is laid out ``split/Label/file`` (``train/Bag/1.png``), or, when a
split is given, ``Label/file`` with every file in that split and optionally a
share moved to the test split. Hidden files and folders (``.DS_Store``,
``.git``) and files at the top (``README``) belong to no layout and are passed
over silently; other files outside the layout are skipped and listed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from typing import Iterator, List, Optional, Union

from shoal_client.errors import InvalidArgument
from shoal_client.gen.shoal.dataset.v1 import dataset_pb2

#: Largest file sent: one message carries one file, and Shoal's server takes
#: messages up to 64 MiB by default (--grpc.max-message-bytes), this client
#: too. A larger file would end the whole upload midway; it is refused before
#: anything is sent instead. (The server's own bound on images,
#: --dataset.max-image-bytes, 32 MiB, rejects a file and goes on.)
MAX_FILE_BYTES = (64 << 20) - 4096  # room for the label and the file name

_SPLITS = {
    "train": dataset_pb2.SPLIT_TRAIN,
    "validation": dataset_pb2.SPLIT_VALIDATION,
    "val": dataset_pb2.SPLIT_VALIDATION,
    "test": dataset_pb2.SPLIT_TEST,
}


@dataclasses.dataclass
class UploadFile:
    """One file of a folder with its place in the dataset."""

    path: str
    split: int
    label: str
    name: str


@dataclasses.dataclass
class FolderScan:
    """The files of a folder to send, and those outside the layout."""

    files: List[UploadFile]
    skipped: List[str]


@dataclasses.dataclass
class UploadResult:
    """What an upload did: the server's totals and rejections, and the files skipped."""

    counts: dataset_pb2.ImportCounts
    rejections: List[dataset_pb2.FileRejection]
    skipped: List[str]


def parse_split(split: Union[str, int, None]) -> int:
    """Returns the Split enum value for "train", "validation" ("val"), "test" or an enum value."""
    if split is None or split == "":
        return dataset_pb2.SPLIT_UNSPECIFIED
    if isinstance(split, int):
        return split
    try:
        return _SPLITS[split.lower()]
    except KeyError:
        raise InvalidArgument(f"split {split!r}: use train, validation or test") from None


def path_share(rel: str) -> float:
    """Maps a slash-separated relative path to [0, 1) by its SHA-256, as the CLI does,
    so a path lands on the same side of a test fraction whatever else the folder holds."""
    top = int.from_bytes(hashlib.sha256(rel.encode()).digest()[:8], "big")
    return (top >> 11) / float(1 << 53)


def scan_folder(root: str, split: int = dataset_pb2.SPLIT_UNSPECIFIED, test_fraction: float = 0.0) -> FolderScan:
    """Lists the files of root that the layout places (see the module's doc)."""
    if not os.path.isdir(root):
        raise InvalidArgument(f"{root}: not a folder")
    if math.isnan(test_fraction) or not 0 <= test_fraction < 1:
        raise InvalidArgument(f"test_fraction={test_fraction}: want a share in [0, 1)")
    if test_fraction > 0 and split == dataset_pb2.SPLIT_UNSPECIFIED:
        raise InvalidArgument("test_fraction goes with split, for a folder laid out Label/file")
    if test_fraction > 0 and split == dataset_pb2.SPLIT_TEST:
        raise InvalidArgument("test_fraction with split test: every file goes to the test split already")
    scan = FolderScan(files=[], skipped=[])
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        for name in sorted(filenames):
            if name.startswith(".") or rel_dir == ".":
                continue
            rel = f"{rel_dir}/{name}"
            placed = _place(rel, split, test_fraction)
            if placed is None:
                scan.skipped.append(rel)
                continue
            path = os.path.join(dirpath, name)
            if os.path.getsize(path) > MAX_FILE_BYTES:
                raise InvalidArgument(f"{path}: larger than the 64 MiB a gRPC message may carry")
            scan.files.append(UploadFile(path, *placed))
    if not scan.files:
        want = "split/Label/file, e.g. train/Cat/1.jpg" if split == dataset_pb2.SPLIT_UNSPECIFIED else "Label/file, e.g. Cat/1.jpg"
        hint = "; for a folder laid out Label/file, give split" if split == dataset_pb2.SPLIT_UNSPECIFIED else ""
        raise InvalidArgument(f"{root} holds no images laid out {want}{hint}")
    return scan


def _place(rel: str, split: int, test_fraction: float) -> Optional[tuple]:
    parts = rel.split("/")
    if split == dataset_pb2.SPLIT_UNSPECIFIED:
        if len(parts) != 3 or parts[0] not in ("train", "validation", "test"):
            return None
        return _SPLITS[parts[0]], parts[1], parts[2]
    if len(parts) != 2:
        return None
    if test_fraction > 0 and path_share(rel) < test_fraction:
        split = dataset_pb2.SPLIT_TEST
    return split, parts[0], parts[1]


def messages(dataset: str, files: List[UploadFile]) -> Iterator[dataset_pb2.UploadImagesRequest]:
    """The upload stream: the header naming the dataset, then one message per
    file, each read only when gRPC is ready to send it."""
    yield dataset_pb2.UploadImagesRequest(header=dataset_pb2.UploadHeader(dataset=dataset))
    for f in files:
        with open(f.path, "rb") as fh:
            content = fh.read()
        yield dataset_pb2.UploadImagesRequest(
            file=dataset_pb2.UploadFile(split=f.split, label=f.label, file_name=f.name, content=content))

"""Where a study's files live under ``STORAGE_ROOT`` and how they are written.

Layout (relative to ``STORAGE_ROOT``)::

    studies/<id>/upload/            what was uploaded (dicom/..., archive.zip, ground_truth.nii.gz)
    studies/<id>/prepared/          the prepared study (ARCHITECTURE.md), built atomically,
                                    plus display_{mr,ct}.i16.gz precompressed for the viewer
    studies/<id>/predictions/mv<k>/ one folder per model version: labels.u16.gz,
                                    ensemble_prob.f16.npy, lesions.json
    studies/<id>/revisions/<n>.u16.gz  every working-mask revision, never rewritten
    studies/<id>/approvals/<k>/     training snapshot of approval k (prepared files + ground_truth.npy)

Every file is written to a temporary name in its folder, fsynced and renamed into
place, and every folder is built under a temporary name and renamed, so a reader never
sees half of anything and a redelivered message never corrupts a finished result. The
writing itself is ``ml.atomic`` (``atomic_write_bytes``, ``temp_dir_beside``,
``publish_dir`` are its functions, kept here under the names the platform uses).
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
from django.conf import settings

from ml.atomic import atomic_write_bytes, publish_dir, temp_dir_beside

__all__ = [
    "DISPLAY_CHANNELS",
    "absolute",
    "atomic_write_bytes",
    "display_file",
    "gunzip_array",
    "gzip_array",
    "prepared_dir",
    "publish_dir",
    "read_gz_array",
    "relative",
    "storage_root",
    "study_dir",
    "temp_dir_beside",
    "upload_dir",
]

DISPLAY_CHANNELS = ("mr", "ct")


def storage_root() -> Path:
    return Path(settings.STORAGE_ROOT)


def study_dir(study_id: int) -> Path:
    return storage_root() / "studies" / str(study_id)


def upload_dir(study_id: int) -> Path:
    return study_dir(study_id) / "upload"


def prepared_dir(study_id: int) -> Path:
    return study_dir(study_id) / "prepared"


def display_file(study_id: int, channel: str) -> Path:
    return prepared_dir(study_id) / f"display_{channel}.i16.gz"


def relative(path: Path) -> str:
    return str(Path(path).relative_to(storage_root()))


def absolute(rel: str) -> Path:
    return storage_root() / rel


def gzip_array(array: np.ndarray, *, dtype: str, level: int = 1) -> bytes:
    """Raw little-endian C-order bytes of ``array`` as ``dtype``, gzip-compressed."""
    raw = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
    return gzip.compress(raw, compresslevel=level, mtime=0)


def gunzip_array(data: bytes, *, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(gzip.decompress(data), dtype=np.dtype(dtype).newbyteorder("<")).reshape(
        shape
    )


def read_gz_array(path: Path, *, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    return gunzip_array(Path(path).read_bytes(), dtype=dtype, shape=shape)


def link_or_copy(src: Path, dest: Path) -> None:
    """``src`` also at ``dest`` (a hard link on the same file system, else a copy); a
    ``dest`` that exists already is kept."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        return
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)

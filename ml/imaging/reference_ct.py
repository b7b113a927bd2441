"""The planning CT's DICOM slices from an upload, for exports that reference them.

Reads the upload the way ingest does (a folder tree in any nesting, or a zip unpacked
by ``safe_extract``), keeps the files of one SeriesInstanceUID and returns their
headers (no pixel data) ordered along the slice normal
(``ml.imaging.geometry.sort_slices``), i.e. in the slice order of
``ct_reference.nii.gz`` and ``mask_to_ct_grid``.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from ml.imaging.archive import safe_extract
from ml.imaging.dicom_io import scan, split_localizer_images
from ml.imaging.errors import IngestError
from ml.imaging.geometry import sort_slices


def load_reference_ct(source: str | os.PathLike[str], series_uid: str) -> list[Dataset]:
    """Headers of the slices of ``series_uid`` in ``source``, sorted along the normal.

    Raises ``IngestError`` (``not_found``, ``not_dicom``, ``corrupt_dicom``,
    ``bad_archive``, ``unsafe_archive``, ``archive_too_large``; ``no_ct`` when the
    series is not in the upload) or ``ValueError`` from ``sort_slices``.
    """
    src = Path(source)
    if not src.exists():
        raise IngestError("not_found", f"the upload {str(src)!r} does not exist", file=str(src))
    with tempfile.TemporaryDirectory(prefix="lesionloop-export-") as tmp:
        if src.is_file() and zipfile.is_zipfile(src):
            root = Path(tmp) / "upload"
            safe_extract(src, root)
        else:
            root = src
        all_series, _ignored = scan(root)
        # Localizer images stored in the CT series are left out, as ingest leaves them out.
        chosen = [split_localizer_images(s)[0] for s in all_series if s.series_uid == series_uid]
        files = sorted(
            {h.path: h for s in chosen for h in s.files}.values(),
            key=lambda h: str(h.path),
        )
        if not files:
            raise IngestError("no_ct", f"the planning CT series {series_uid} is not in the upload")
        datasets = []
        for header in files:
            try:
                # The mode ``scan`` read it with (force=True for a file without preamble).
                ds = pydicom.dcmread(header.path, stop_before_pixels=True, force=header.forced)
                datasets.append(ds)
            except Exception as exc:
                raise IngestError(
                    "corrupt_dicom", f"a CT slice cannot be read ({exc})", file=header.name
                ) from exc
    return sort_slices(datasets)

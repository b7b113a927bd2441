"""Builders of the ingest faults that are accepted with a report row: each edits a
copy of a synthetic study's DICOM folder (``ct/`` and ``mr/``) and returns the report
kinds ingest must then list. Shared by the imaging fault tests and the studies API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid


def series_files(up: Path, modality: str) -> list[Path]:
    return sorted((up / modality.lower()).glob("*.dcm"))


def edit_all(paths: list[Path], fn: Callable[[pydicom.Dataset], None]) -> None:
    for p in paths:
        ds = pydicom.dcmread(p)
        fn(ds)
        ds.save_as(p, enforce_file_format=True)


def localizer_in_ct_series(up: Path) -> list[str]:
    """A coronal 48x40 scout with the CT's series UID and ImageType ...\\LOCALIZER."""
    ds = pydicom.dcmread(series_files(up, "ct")[0])
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.Rows, ds.Columns = 48, 40
    ds.PixelData = np.full((48, 40), 1000, np.uint16).tobytes()
    ds.SOPInstanceUID = generate_uid()
    ds.save_as(up / "ct" / "SCOUT.dcm", enforce_file_format=True)
    return ["localizer_dropped"]


def lossy_flag(up: Path) -> list[str]:
    def flag(ds: pydicom.Dataset) -> None:
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = "8.5"
        ds.LossyImageCompressionMethod = "ISO_10918_1"

    edit_all(series_files(up, "ct"), flag)
    return ["lossy_compression"]


def spacing_header(up: Path) -> list[str]:
    edit_all(series_files(up, "ct"), lambda ds: setattr(ds, "SpacingBetweenSlices", "9.0"))
    return ["spacing_header_mismatch"]


def duplicate_file(up: Path) -> list[str]:
    src = series_files(up, "ct")[7]
    (up / "copy.dcm").write_bytes(src.read_bytes())
    return ["duplicate_dropped"]

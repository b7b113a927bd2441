"""Refuse physically impossible images before anything is computed from them.

A header can hold numbers no scanner writes: ``RescaleSlope = inf``, a
``RescaleIntercept`` of 1e308, a ``PixelSpacing`` of 1e300 or 0. Ingest reads them
faithfully, and everything downstream (volumes in mm3, centroids, the model input)
turns into NaN or infinity, which surfaces much later as a 500 in the review API.
These checks run on the loaded CT and MR (``prepare_study``) and refuse such uploads
with a specific ``IngestError`` code:

- ``bad_pixel_spacing``: in-plane spacing outside ``PIXEL_SPACING_MM`` (or not finite);
- ``bad_slice_spacing``: slice step outside ``SLICE_STEP_MM`` (or not finite);
- ``bad_geometry``: a non-finite origin or direction, or an origin beyond
  ``MAX_ORIGIN_MM`` from the scanner's isocentre;
- ``bad_rescale``: a voxel value that is not finite, or outside the plausible range of
  the modality after rescale (``VALUE_RANGE``).

The bounds are deliberately wide: they refuse nonsense, not unusual protocols.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import SimpleITK as sitk

from ml.imaging.errors import IngestError

# In-plane pixel spacing (mm): 0.05 mm is micro-CT, 10 mm a scout image.
PIXEL_SPACING_MM = (0.05, 10.0)
# Distance between slices (mm).
SLICE_STEP_MM = (0.1, 20.0)
# The patient lies within a metre or so of the isocentre; 100 m is nonsense.
MAX_ORIGIN_MM = 1e5
# Values after rescale: CT in HU (16-bit storage with slope 1 spans this), MR in scanner
# units (vendor scalings reach 1e5 or so).
VALUE_RANGE: dict[str, tuple[float, float]] = {
    "CT": (-32768.0, 65535.0),
    "MR": (-1e7, 1e7),
}

_PIXEL_SPACING_TAG = "PixelSpacing (0028,0030)"
_RESCALE_TAG = "RescaleSlope (0028,1053) / RescaleIntercept (0028,1052)"


def _within(value: float, bounds: tuple[float, float]) -> bool:
    return math.isfinite(value) and bounds[0] <= value <= bounds[1]


def check_pixel_spacing(
    spacing_mm: Iterable[float] | None, *, label: str, file: str | None = None
) -> None:
    """``bad_pixel_spacing`` unless every in-plane spacing lies in ``PIXEL_SPACING_MM``."""
    if spacing_mm is None:
        return  # absent: dicom_io refuses it as missing_tag
    values = [float(v) for v in spacing_mm]
    bad = [v for v in values if not _within(v, PIXEL_SPACING_MM)]
    if bad:
        lo, hi = PIXEL_SPACING_MM
        raise IngestError(
            "bad_pixel_spacing",
            f"{label}: pixel spacing {bad[0]:g} mm is impossible (expected {lo:g} to {hi:g} mm)",
            file=file,
            tag=_PIXEL_SPACING_TAG,
        )


def check_slice_step(step_mm: float, *, label: str, file: str | None = None) -> None:
    """``bad_slice_spacing`` unless ``step_mm`` lies in ``SLICE_STEP_MM``."""
    if not _within(float(step_mm), SLICE_STEP_MM):
        lo, hi = SLICE_STEP_MM
        raise IngestError(
            "bad_slice_spacing",
            f"{label}: the slices are {float(step_mm):g} mm apart, which is impossible "
            f"(expected {lo:g} to {hi:g} mm)",
            file=file,
            tag="ImagePositionPatient (0020,0032)",
        )


def check_geometry(img: sitk.Image, *, label: str, file: str | None = None) -> None:
    """Spacing, origin and direction of a loaded volume (SimpleITK order x, y, z)."""
    sx, sy, sz = img.GetSpacing()
    check_pixel_spacing((sy, sx), label=label, file=file)
    check_slice_step(sz, label=label, file=file)
    origin = np.asarray(img.GetOrigin(), dtype=float)
    direction = np.asarray(img.GetDirection(), dtype=float)
    if not (np.all(np.isfinite(origin)) and np.all(np.isfinite(direction))):
        raise IngestError(
            "bad_geometry", f"{label}: the slice position or orientation is not finite", file=file
        )
    if np.abs(origin).max() > MAX_ORIGIN_MM:
        raise IngestError(
            "bad_geometry",
            f"{label}: the first slice lies {np.abs(origin).max():g} mm from the isocentre",
            file=file,
            tag="ImagePositionPatient (0020,0032)",
        )


def check_values(img: sitk.Image, *, modality: str, label: str, file: str | None = None) -> None:
    """``bad_rescale`` for a non-finite voxel or one outside ``VALUE_RANGE[modality]``."""
    arr = sitk.GetArrayViewFromImage(img)
    lo, hi = VALUE_RANGE[modality]
    vmin, vmax = float(np.min(arr)), float(np.max(arr))  # NaN propagates through both
    if not (math.isfinite(vmin) and math.isfinite(vmax)):
        raise IngestError(
            "bad_rescale",
            f"{label}: rescaled voxel values are not finite (check RescaleSlope and "
            "RescaleIntercept)",
            file=file,
            tag=_RESCALE_TAG,
        )
    if vmin < lo or vmax > hi:
        raise IngestError(
            "bad_rescale",
            f"{label}: rescaled voxel values span {vmin:.6g} to {vmax:.6g}, outside the "
            f"plausible {lo:g} to {hi:g} for {modality}",
            file=file,
            tag=_RESCALE_TAG,
        )


def check_image(img: sitk.Image, *, modality: str, label: str, file: str | None = None) -> None:
    """Every check above on one loaded volume."""
    check_geometry(img, label=label, file=file)
    check_values(img, modality=modality, label=label, file=file)

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
  the modality after rescale (``VALUE_RANGE``);
- ``ct_slice_not_hounsfield`` (``check_ct_slice_air``): some axial slices of a CT
  whose air is not near -1000 HU while other slices' is, as when one file lacks its
  RescaleIntercept (a CT wrong throughout is ``dicom_io.check_ct_air``'s to refuse).

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

# Air in every axial slice of a CT (the low ``SLICE_AIR_QUANTILE`` of the slice,
# padding left out) lies within this range (HU): -1000 give or take noise, beam
# hardening and scanners that clip air at -1024. A missing RescaleIntercept puts it
# near 0 (+24 HU for a scanner's usual -1024).
CT_SLICE_AIR_HU = (-1250.0, -750.0)
SLICE_AIR_QUANTILE = 0.01
# A slice minimum below this is padding (outside the reconstructed circle: -2000 or
# -3024 HU on most scanners), not air: the pixels holding exactly that value are left
# out. Air shifted that low is noisy, so little of it holds the exact minimum.
PADDING_BELOW_HU = -1500.0
_SLICE_SAMPLES = 64  # pixels sampled along each in-plane axis at most

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


def slice_air_hu(img: sitk.Image) -> np.ndarray:
    """The air value (HU) of each axial slice of a CT, shape (slices,): the
    ``SLICE_AIR_QUANTILE`` quantile of a regular sample of the slice's pixels (at most
    ``_SLICE_SAMPLES`` per in-plane axis), leaving out padding (the slice minimum, when
    below ``PADDING_BELOW_HU``); NaN for a slice of nothing but padding.

    Every axial slice of a head planning CT has air around the head and the couch, so
    this is about -1000 HU on a right slice, whatever the anatomy. Reads ``img``'s own
    buffer; ~10 ms for 512x512x160 int16."""
    arr = sitk.GetArrayViewFromImage(img)
    stride = max(1, -(-max(arr.shape[1:]) // _SLICE_SAMPLES))
    sample = arr[:, ::stride, ::stride].reshape(arr.shape[0], -1)
    n = sample.shape[1]
    lowest = sample.min(axis=1)
    padded = lowest < PADDING_BELOW_HU
    n_pad = np.zeros(len(lowest), dtype=int)
    if padded.any():  # padding sorts first: its count shifts the quantile's index
        n_pad[padded] = (sample[padded] == lowest[padded, None]).sum(axis=1)
    n_valid = n - n_pad
    index = np.minimum(n_pad + (n_valid * SLICE_AIR_QUANTILE).astype(int), n - 1)
    part = np.partition(sample, np.unique(index), axis=1)  # each row holds every index
    air = np.take_along_axis(part, index[:, None], axis=1)[:, 0].astype(float)
    air[n_valid == 0] = np.nan
    return air


def check_ct_slice_air(img: sitk.Image, *, slice_files: list[str], label: str) -> None:
    """``ct_slice_not_hounsfield`` when the air (``slice_air_hu``) of some axial slices
    lies outside ``CT_SLICE_AIR_HU`` while that of others lies inside: those slices'
    values are not Hounsfield units (a wrong or missing RescaleIntercept /
    RescaleSlope in their files). A CT with no slice inside is left to the whole-series
    check (``dicom_io.check_ct_air``: ``ct_not_hounsfield``). ``slice_files``: the file
    of each slice, in the volume's order."""
    air = slice_air_hu(img)
    lo, hi = CT_SLICE_AIR_HU
    known = np.isfinite(air)
    inside = known & (air >= lo) & (air <= hi)
    bad = [int(k) for k in np.flatnonzero(known & ~inside)]
    if not bad or not inside.any():
        return
    others = f"{float(np.median(air[inside])):.0f} HU"
    shown = ", ".join(f"{slice_files[k]} (air at {air[k]:.0f} HU)" for k in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    raise IngestError(
        "ct_slice_not_hounsfield",
        f"{label}: {len(bad)} of {len(air)} slice(s) have their air far from -1000 HU where "
        f"the other slices' air is at {others}: {shown}{more}; their RescaleIntercept / "
        "RescaleSlope is wrong or missing, so their values are not Hounsfield units",
        file=slice_files[bad[0]],
        tag=_RESCALE_TAG,
    )

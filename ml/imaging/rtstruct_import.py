"""Ground truth from an RT Structure Set made by a treatment planning system.

A site's SRS archive holds each treated study with the structure set its planning
system made: ROIs named like ``GTV1``, ``GTV_met2`` (the lesions), ``PTV...``,
``Brain``, ``BrainStem``, ``Eye_L`` (margins and organs at risk). The ROIs whose name
matches a pattern (``DEFAULT_ROI_PATTERN``: names starting with "GTV", any case) are
rasterised onto the planning CT and become the study's lesion mask; every other ROI
is listed as ignored with the reason.

Rasterising: each CLOSED_PLANAR contour is mapped into the CT's continuous voxel
index (SimpleITK, so any orientation: head first, feet first, prone), put on the CT
slice nearest its plane, and filled where a voxel centre is inside the polygon; the
contours of one ROI on one slice combine by the even-odd rule, so an inner contour is
a hole, however the planning system wrote it. ROIs are united.

Refused with ``IngestError`` (the study is not imported): ``rtstruct_frame_mismatch``
(the structure set's frame of reference is not the CT's), ``rtstruct_series_mismatch``
(it references another image series than the planning CT), ``rtstruct_unreadable``
(no ROI / contour sequences). No matching ROI is not an error: the report says so and
the caller carries on without ground truth.

Pure pydicom / NumPy / SimpleITK / scikit-image (no Django).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pydicom
import SimpleITK as sitk

from ml.imaging.errors import IngestError

DEFAULT_ROI_PATTERN = r"(?i)^\s*gtv"


@dataclass
class RoiImport:
    """What an RTSTRUCT gave: the lesion mask on the CT grid and the report rows."""

    mask: sitk.Image | None  # uint8 0/1 on the CT grid; None when no ROI matched
    included: list[str] = field(default_factory=list)
    ignored: list[dict[str, str]] = field(default_factory=list)
    file: str = ""

    def report(self) -> dict[str, object]:
        return {
            "source": "rtstruct",
            "file": self.file,
            "included": self.included,
            "ignored": self.ignored,
        }


def _referenced_series(ds: pydicom.Dataset) -> set[str]:
    out = set()
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                out.add(str(series.get("SeriesInstanceUID", "")))
    return out - {""}


def _frames(ds: pydicom.Dataset) -> set[str]:
    frames = {
        str(roi.get("ReferencedFrameOfReferenceUID", ""))
        for roi in ds.get("StructureSetROISequence", [])
    }
    frames |= {
        str(f.get("FrameOfReferenceUID", ""))
        for f in ds.get("ReferencedFrameOfReferenceSequence", [])
    }
    return frames - {""}


def check_references(
    ds: pydicom.Dataset, *, ct_frame_uid: str, ct_series_uid: str, name: str
) -> None:
    """``IngestError`` unless the structure set was drawn on this planning CT."""
    frames = _frames(ds)
    if ct_frame_uid and frames and frames != {ct_frame_uid}:
        raise IngestError(
            "rtstruct_frame_mismatch",
            f"the structure set's frame of reference ({', '.join(sorted(frames))}) is not the "
            f"planning CT's ({ct_frame_uid})",
            file=name,
            tag="FrameOfReferenceUID (0020,0052)",
        )
    series = _referenced_series(ds)
    if ct_series_uid and series and ct_series_uid not in series:
        raise IngestError(
            "rtstruct_series_mismatch",
            f"the structure set references series {', '.join(sorted(series))}, not the "
            f"planning CT series {ct_series_uid}",
            file=name,
            tag="SeriesInstanceUID (0020,000E)",
        )


def _contours_by_roi(ds: pydicom.Dataset, name: str) -> dict[int, list[np.ndarray]]:
    if "StructureSetROISequence" not in ds or "ROIContourSequence" not in ds:
        raise IngestError(
            "rtstruct_unreadable", "the structure set has no ROI or ROI contour sequence", file=name
        )
    out: dict[int, list[np.ndarray]] = {}
    for roi_contour in ds.ROIContourSequence:
        number = int(roi_contour.get("ReferencedROINumber", -1))
        for item in roi_contour.get("ContourSequence", []):
            if str(item.get("ContourGeometricType", "")).upper() != "CLOSED_PLANAR":
                continue
            xyz = np.asarray([float(v) for v in item.get("ContourData", [])], dtype=float)
            if xyz.size >= 9 and xyz.size % 3 == 0:
                out.setdefault(number, []).append(xyz.reshape(-1, 3))
    return out


def rasterise_contours(contours: list[np.ndarray], ct: sitk.Image) -> np.ndarray:
    """bool (z, y, x) on ``ct`` of CLOSED_PLANAR contours (each (N, 3) patient mm):
    even-odd per slice, a voxel is in when its centre is inside."""
    from skimage.draw import polygon

    size_x, size_y, size_z = ct.GetSize()
    mask = np.zeros((size_z, size_y, size_x), dtype=bool)
    for xyz in contours:
        idx = np.array([ct.TransformPhysicalPointToContinuousIndex(tuple(p)) for p in xyz])
        k = int(round(float(np.mean(idx[:, 2]))))
        if not 0 <= k < size_z:
            continue
        rr, cc = polygon(idx[:, 1], idx[:, 0], shape=(size_y, size_x))
        fill = np.zeros((size_y, size_x), dtype=bool)
        fill[rr, cc] = True
        mask[k] ^= fill
    return mask


def import_rtstruct(
    ds: pydicom.Dataset,
    ct: sitk.Image,
    *,
    ct_frame_uid: str,
    ct_series_uid: str,
    roi_pattern: str = DEFAULT_ROI_PATTERN,
    name: str = "",
) -> RoiImport:
    """The lesion mask of the ROIs whose name matches ``roi_pattern`` (a regular
    expression, searched) on the planning CT ``ct``; the others are reported ignored.
    ``IngestError`` as in the module docstring (also ``rtstruct_bad_pattern``)."""
    try:
        pattern = re.compile(roi_pattern)
    except re.error as exc:
        raise IngestError(
            "rtstruct_bad_pattern", f"the ROI name pattern is invalid ({exc})"
        ) from exc
    name = name or str(ds.get("SOPInstanceUID", ""))
    check_references(ds, ct_frame_uid=ct_frame_uid, ct_series_uid=ct_series_uid, name=name)
    contours = _contours_by_roi(ds, name)
    result = RoiImport(mask=None, file=name)
    union = np.zeros(sitk.GetArrayViewFromImage(ct).shape, dtype=bool)
    for roi in ds.StructureSetROISequence:
        roi_name = str(roi.get("ROIName", "")).strip()
        number = int(roi.get("ROINumber", -1))
        if not pattern.search(roi_name):
            result.ignored.append(
                {"roi": roi_name, "reason": "name does not match the lesion pattern"}
            )
            continue
        if not contours.get(number):
            result.ignored.append({"roi": roi_name, "reason": "no closed planar contour"})
            continue
        union |= rasterise_contours(contours[number], ct)
        result.included.append(roi_name)
    if result.included:
        mask = sitk.GetImageFromArray(union.astype(np.uint8))
        mask.CopyInformation(ct)
        result.mask = mask
    return result

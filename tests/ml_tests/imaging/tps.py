"""An RT Structure Set written the way a treatment planning system writes one (pydicom
only, not our exporter): named ROIs, every slice's outer and inner contours as separate
CLOSED_PLANAR items."""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from skimage.measure import find_contours

RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"


def _contours(mask: np.ndarray, ct: sitk.Image) -> list[list[float]]:
    """Every slice's contours (outer and inner separately, as planning systems write
    them) as flat patient-mm ContourData."""
    out = []
    for k in np.flatnonzero(mask.any(axis=(1, 2))):
        for c in find_contours(np.pad(mask[k].astype(float), 1), 0.5):
            pts = c - 1.0
            xyz = [
                ct.TransformContinuousIndexToPhysicalPoint((float(x), float(y), float(k)))
                for y, x in pts[:-1]
            ]
            out.append([v for p in xyz for v in p])
    return out


def tps_rtstruct(
    ct_first: Any,
    ct: sitk.Image,
    rois: dict[str, np.ndarray],
    *,
    frame: str | None = None,
    series: str | None = None,
) -> Dataset:
    """A structure set written the way a planning system writes one (pydicom only)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = RTSTRUCT
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.Modality = RTSTRUCT, "RTSTRUCT"
    for kw in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "StudyID"):
        setattr(ds, kw, ct_first.get(kw, ""))
    ds.SeriesInstanceUID, ds.StructureSetLabel = generate_uid(), "TPS plan"
    frame = frame or str(ct_first.FrameOfReferenceUID)
    ref_series = Dataset()
    ref_series.SeriesInstanceUID = series or str(ct_first.SeriesInstanceUID)
    ref_study = Dataset()
    ref_study.RTReferencedSeriesSequence = DicomSequence([ref_series])
    ref_frame = Dataset()
    ref_frame.FrameOfReferenceUID = frame
    ref_frame.RTReferencedStudySequence = DicomSequence([ref_study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([ref_frame])
    roi_items, contour_items = [], []
    for number, (name, mask) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = number, name, frame
        roi_items.append(roi)
        rc = Dataset()
        rc.ReferencedROINumber = number
        items = []
        for data in _contours(mask, ct):
            item = Dataset()
            item.ContourGeometricType = "CLOSED_PLANAR"
            item.NumberOfContourPoints = len(data) // 3
            item.ContourData = [f"{v:.3f}" for v in data]
            items.append(item)
        rc.ContourSequence = DicomSequence(items)
        contour_items.append(rc)
    ds.StructureSetROISequence = DicomSequence(roi_items)
    ds.ROIContourSequence = DicomSequence(contour_items)
    return ds

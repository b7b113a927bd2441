"""DICOM RT Structure Set export of a lesion label mask drawn on the planning CT.

What treatment planning systems import: one ROI per lesion (RTROIInterpretedType
``GTV``), CLOSED_PLANAR contours in patient millimetres on each CT slice the lesion
touches, every contour referencing its slice's SOPInstanceUID. The structure set
shares the CT's patient, study and frame of reference and gets new series/instance
UIDs.

Grid convention: mask slice ``k`` is the ``k``-th CT slice ordered along the slice
normal (``ml.imaging.geometry.sort_slices``, the order ``ml.imaging.dicom_io.load_series``
stacks them in), mask row ``r`` / column ``c`` are the slice's pixel row / column. Pixel
``(r, c)`` of a slice sits at ``IPP + c * PixelSpacing[1] * row_dir +
r * PixelSpacing[0] * col_dir`` (``row_dir``, ``col_dir`` = the two halves of
ImageOrientationPatient). This is the grid of ``ct_reference.nii.gz`` and of
``mask_to_ct_grid``.

Contours: ``skimage.measure.find_contours`` at level 0.5 on the lesion's slice mask
padded by one pixel, so every contour closes. Its vertices lie half-way between a
lesion pixel and a background pixel, so a pixel centre is inside the polygons
exactly when it is a lesion pixel; ``read_rtstruct_masks`` rasterises them back.
A hole (a ring-shaped lesion) is not written as a separate inner contour: planning
systems disagree on whether contours on one slice are OR-ed or XOR-ed, so each hole
is joined to the contour around it by a zero-width "keyhole" cut (to the nearest
vertex, along a segment that passes through no pixel centre), making one polygon
that every rule rasterises the same way.

An empty mask (no lesion label) raises ``ValueError``: the Structure Set ROI Sequence
is Type 1, a structure set without ROIs is not valid DICOM.

The slice geometry and the slice-normal sort live in ``ml.imaging.geometry``; what
this exporter shares with the SEG one (mask checks, the study attributes copied from
the CT, ``dataset_bytes``) in ``ml.imaging.dicom_export``.

Pure pydicom / NumPy / scikit-image (no SimpleITK, no Django).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

from ml.imaging.dicom_export import (
    MANUFACTURER,
    Provenance,
    copy_study_attributes,
    prepare_export,
    roi_colour,
    with_exportable_charset,
)
from ml.imaging.geometry import SliceGeometry, sort_slices

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
# The conventional (retired Detached Study Management) class of RTReferencedStudySequence.
DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"


def slice_contours(mask2d: np.ndarray) -> list[np.ndarray]:
    """Closed contours of a 2-D binary mask as (N, 2) (row, col), last point not repeated,
    every hole joined to the contour around it (``keyhole``): one polygon per island."""
    from skimage.measure import find_contours

    padded = np.pad(np.asarray(mask2d, dtype=np.float32), 1)
    rings = []
    for contour in find_contours(padded, 0.5):
        pts = contour - 1.0
        if len(pts) > 1 and np.allclose(pts[0], pts[-1]):
            pts = pts[:-1]
        if len(pts) >= 3:
            rings.append(pts)
    return _join_holes(rings)


def _signed_area(pts: np.ndarray) -> float:
    """Shoelace area of a closed (N, 2) polygon; the sign gives its orientation."""
    r, c = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(r, np.roll(c, -1)) - np.dot(c, np.roll(r, -1)))


def _join_holes(rings: list[np.ndarray]) -> list[np.ndarray]:
    """Outer contours with their holes spliced in; a contour inside an odd number of
    others is a hole of the smallest one around it."""
    from skimage.measure import points_in_poly

    inside = [
        [j for j, other in enumerate(rings) if j != i and points_in_poly(ring[:1], other)[0]]
        for i, ring in enumerate(rings)
    ]
    holes: dict[int, list[int]] = {}
    outers = []
    for i, parents in enumerate(inside):
        if len(parents) % 2 == 0:
            outers.append(i)
            continue
        parent = min(parents, key=lambda j: abs(_signed_area(rings[j])))
        holes.setdefault(parent, []).append(i)
    out = []
    for i in outers:
        polygon = rings[i]
        for h in holes.get(i, []):
            polygon = keyhole(polygon, rings[h])
        out.append(polygon)
    return out


def keyhole(outer: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """One polygon: ``outer``, a cut to ``hole``, ``hole`` the other way round, the cut
    back. The cut joins the nearest pair of vertices whose segment passes through no
    pixel centre (integer (row, col)), so no pixel is on the zero-width cut."""
    if (_signed_area(outer) > 0) == (_signed_area(hole) > 0):
        hole = hole[::-1]
    dist = np.linalg.norm(outer[:, None, :] - hole[None, :, :], axis=2)
    for flat in np.argsort(dist, axis=None):
        i, j = np.unravel_index(int(flat), dist.shape)
        if not _hits_pixel_centre(outer[i], hole[j]):
            break
    return np.concatenate([outer[: i + 1], hole[j:], hole[: j + 1], outer[i:]])


def _hits_pixel_centre(a: np.ndarray, b: np.ndarray, tol: float = 1e-6) -> bool:
    """Whether the segment a-b ((row, col) pixel units) passes through a pixel centre."""
    (r0, c0), (r1, c1) = a, b
    if abs(r1 - r0) < tol:
        if abs(r0 - round(r0)) > tol:
            return False
        lo, hi = sorted((c0, c1))
        return np.ceil(lo - tol) <= np.floor(hi + tol)
    for r in range(int(np.ceil(min(r0, r1) - tol)), int(np.floor(max(r0, r1) + tol)) + 1):
        c = c0 + (c1 - c0) * (r - r0) / (r1 - r0)
        if abs(c - round(c)) < tol:
            return True
    return False


def _ds_values(values: np.ndarray) -> list[str]:
    """Decimal Strings (at most 16 characters), 4 decimals (0.1 micrometre)."""
    out = []
    for v in np.asarray(values, dtype=float).ravel():
        s = f"{v:.4f}".rstrip("0").rstrip(".")
        out.append("0" if s in ("-0", "", "-") else s)
    return out


def _contour_image_item(ds: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    return item


def _file_meta(sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RT_STRUCTURE_SET_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def _structure_set_header(
    first: Dataset,
    frame_uid: str,
    *,
    structure_set_label: str,
    series_description: str,
    series_number: int,
    now: dt.datetime,
    provenance: Provenance,
) -> Dataset:
    """The data set with file meta, the CT's patient/study attributes, SOP and series
    instance UIDs (derived from the provenance's seed), the RT Series / Frame of
    Reference / Structure Set / RT Approval attributes (no ROI yet)."""
    sop_uid = provenance.uid("rtstruct", "sop")
    ds = Dataset()
    ds.file_meta = _file_meta(sop_uid)
    copy_study_attributes(first, ds)
    ds.SOPClassUID = RT_STRUCTURE_SET_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = provenance.uid("rtstruct", "series")
    ds.OperatorsName = ""  # Type 2 (RT Series): the reviewer is in RT Approval
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description[:64]
    ds.InstanceNumber = 1
    ds.Manufacturer = MANUFACTURER
    ds.FrameOfReferenceUID = frame_uid
    ds.StructureSetLabel = structure_set_label[:16]
    ds.StructureSetDate = now.strftime("%Y%m%d")
    ds.StructureSetTime = now.strftime("%H%M%S")
    ds.InstanceCreationDate = ds.StructureSetDate
    ds.InstanceCreationTime = ds.StructureSetTime
    _rt_approval(ds, provenance)
    return ds


def _rt_approval(ds: Dataset, provenance: Provenance) -> None:
    """RT Approval module (PS3.3 C.8.8.16): APPROVED with the reviewer and the time of
    the approval, or UNAPPROVED."""
    if not provenance.approved:
        ds.ApprovalStatus = "UNAPPROVED"
        return
    ds.ApprovalStatus = "APPROVED"
    when = provenance.reviewed_at or dt.datetime.now()
    ds.ReviewDate = when.strftime("%Y%m%d")
    ds.ReviewTime = when.strftime("%H%M%S")
    ds.ReviewerName = provenance.reviewer[:64]


def _referenced_frame_of_reference(slices: Sequence[Dataset], frame_uid: str) -> Dataset:
    """The Referenced Frame of Reference item: frame -> study -> series -> every slice."""
    first = slices[0]
    series_item = Dataset()
    series_item.SeriesInstanceUID = first.SeriesInstanceUID
    series_item.ContourImageSequence = DicomSequence([_contour_image_item(s) for s in slices])
    study_item = Dataset()
    study_item.ReferencedSOPClassUID = DETACHED_STUDY_MANAGEMENT
    study_item.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study_item.RTReferencedSeriesSequence = DicomSequence([series_item])
    frame_item = Dataset()
    frame_item.FrameOfReferenceUID = frame_uid
    frame_item.RTReferencedStudySequence = DicomSequence([study_item])
    return frame_item


def _contour_items(
    lesion: np.ndarray, slices: Sequence[Dataset], geoms: Sequence[SliceGeometry]
) -> list[Dataset]:
    """CLOSED_PLANAR Contour Sequence items (patient mm) of a bool (z, y, x) lesion mask,
    slice by slice, each referencing its CT slice; numbered 1.. in slice order."""
    items: list[Dataset] = []
    for k in np.flatnonzero(lesion.any(axis=(1, 2))):
        for pts in slice_contours(lesion[k]):
            xyz = geoms[int(k)].to_patient(pts)
            item = Dataset()
            item.ContourImageSequence = DicomSequence([_contour_image_item(slices[int(k)])])
            item.ContourGeometricType = "CLOSED_PLANAR"
            item.NumberOfContourPoints = len(xyz)
            item.ContourNumber = len(items) + 1
            item.ContourData = _ds_values(xyz)
            items.append(item)
    return items


def _roi_items(
    number: int,
    name: str,
    frame_uid: str,
    algorithm: tuple[str, str],
    contours: list[Dataset],
) -> tuple[Dataset, Dataset, Dataset]:
    """(Structure Set ROI, ROI Contour, RT ROI Observations) items of ROI ``number``;
    ``algorithm`` = (ROIGenerationAlgorithm, ROIGenerationDescription)."""
    roi = Dataset()
    roi.ROINumber = number
    roi.ReferencedFrameOfReferenceUID = frame_uid
    roi.ROIName = name
    roi.ROIGenerationAlgorithm = algorithm[0]
    if algorithm[1]:
        roi.ROIGenerationDescription = algorithm[1]

    roi_contour = Dataset()
    roi_contour.ROIDisplayColor = list(roi_colour(number))
    roi_contour.ContourSequence = DicomSequence(contours)
    roi_contour.ReferencedROINumber = number

    obs = Dataset()
    obs.ObservationNumber = number
    obs.ReferencedROINumber = number
    obs.ROIObservationLabel = name[:16]
    obs.RTROIInterpretedType = "GTV"
    obs.ROIInterpreter = ""
    return roi, roi_contour, obs


def build_rtstruct(
    ct_datasets: Sequence[Dataset],
    labels: np.ndarray,
    names: Mapping[int, str] | None = None,
    *,
    structure_set_label: str = "LesionLoop",
    series_description: str = "LesionLoop lesions",
    roi_generation_algorithm: str = "MANUAL",
    series_number: int = 901,
    now: dt.datetime | None = None,
    provenance: Provenance | None = None,
) -> Dataset:
    """An RT Structure Set (with file meta) of ``labels`` on the CT ``ct_datasets``.

    ``ct_datasets``: the planning CT's slices, one dataset each, any order (headers
    are enough; pixel data is not read). ``labels``: integer (z, y, x) mask on the CT
    grid in ``sort_slices`` order, 0 = background, each other value one lesion.
    ``names``: ROI name per label (default ``Lesion <label>``). One ROI per label
    present in the mask, ROI numbers 1.. in ascending label order. ``provenance``
    (``ml.imaging.dicom_export.Provenance``): UIDs derived from its seed, RT Approval,
    per-ROI ROIGenerationAlgorithm / Description (without it: new UIDs, UNAPPROVED,
    ``roi_generation_algorithm`` for every ROI). ``ValueError`` for an empty or
    ill-fitting mask (``prepare_export``) or a CT without FrameOfReferenceUID.
    """
    slices, arr, present = prepare_export(
        ct_datasets, labels, "a structure set needs at least one ROI"
    )
    names = dict(names or {})
    first = with_exportable_charset(slices[0])
    frame_uid = str(first.get("FrameOfReferenceUID", ""))
    if not frame_uid:
        raise ValueError(
            f"CT slice {first.get('SOPInstanceUID', '?')!s} has no FrameOfReferenceUID"
        )
    geoms = [SliceGeometry.of(ds) for ds in slices]
    ds = _structure_set_header(
        first,
        frame_uid,
        structure_set_label=structure_set_label,
        series_description=series_description,
        series_number=series_number,
        now=now or (provenance and provenance.reviewed_at) or dt.datetime.now(),
        provenance=provenance or Provenance(),
    )
    ds.ReferencedFrameOfReferenceSequence = DicomSequence(
        [_referenced_frame_of_reference(slices, frame_uid)]
    )
    rois, contours, observations = [], [], []
    for number, label in enumerate(present, start=1):
        name = str(names.get(label) or f"Lesion {label}")[:64]
        items = _contour_items(arr == label, slices, geoms)
        algorithm = (
            (provenance.algorithm(label), provenance.description(label))
            if provenance is not None
            else (roi_generation_algorithm, "")
        )
        roi, roi_contour, obs = _roi_items(number, name, frame_uid, algorithm, items)
        rois.append(roi)
        contours.append(roi_contour)
        observations.append(obs)
    ds.StructureSetROISequence = DicomSequence(rois)
    ds.ROIContourSequence = DicomSequence(contours)
    ds.RTROIObservationsSequence = DicomSequence(observations)
    return ds


def read_rtstruct_masks(
    rtstruct_ds: Dataset, ct_datasets: Sequence[Dataset]
) -> dict[str, np.ndarray]:
    """Rasterise every ROI's CLOSED_PLANAR contours back onto the CT grid.

    Returns ``{ROIName: bool (z, y, x)}`` in ``sort_slices`` order. A contour goes on
    the slice its ContourImageSequence references (else the slice nearest its plane);
    contours on one slice combine by the even-odd rule (an inner contour is a hole);
    a pixel is inside when its centre is (``skimage.draw.polygon``).
    """
    from skimage.draw import polygon

    slices = sort_slices(ct_datasets)
    rows, cols = int(slices[0].Rows), int(slices[0].Columns)
    geoms = [SliceGeometry.of(s) for s in slices]
    index = {str(s.SOPInstanceUID): k for k, s in enumerate(slices)}
    normal = geoms[0].normal
    dist = np.array([g.position @ normal for g in geoms])
    names = {int(r.ROINumber): str(r.ROIName) for r in rtstruct_ds.StructureSetROISequence}
    out: dict[str, np.ndarray] = {}
    for roi_contour in rtstruct_ds.get("ROIContourSequence", []):
        name = names.get(int(roi_contour.ReferencedROINumber), str(roi_contour.ReferencedROINumber))
        mask = np.zeros((len(slices), rows, cols), dtype=bool)
        for item in roi_contour.get("ContourSequence", []):
            if str(item.get("ContourGeometricType", "")) != "CLOSED_PLANAR":
                continue
            xyz = np.asarray([float(v) for v in item.ContourData], dtype=float).reshape(-1, 3)
            k = None
            for ref in item.get("ContourImageSequence", []):
                k = index.get(str(ref.ReferencedSOPInstanceUID))
            if k is None:
                k = int(np.argmin(np.abs(dist - float(np.mean(xyz @ normal)))))
            rc = geoms[k].to_pixel(xyz)
            rr, cc = polygon(rc[:, 0], rc[:, 1], shape=(rows, cols))
            fill = np.zeros((rows, cols), dtype=bool)
            fill[rr, cc] = True
            mask[k] ^= fill
        out[name] = mask
    return out

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
(even-odd rule: an inner contour is a hole) exactly when it is a lesion pixel;
``read_rtstruct_masks`` rasterises them back that way.

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
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

from ml.imaging.dicom_export import MANUFACTURER, copy_study_attributes, prepare_export
from ml.imaging.geometry import SliceGeometry, sort_slices

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
# The conventional (retired Detached Study Management) class of RTReferencedStudySequence.
DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"

# Distinct display colours, cycled: red, green, blue, yellow, magenta, cyan, orange,
# purple, lime, pink, teal, brown.
ROI_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0),
    (0, 200, 0),
    (0, 96, 255),
    (255, 220, 0),
    (255, 0, 255),
    (0, 220, 220),
    (255, 128, 0),
    (128, 0, 255),
    (160, 255, 0),
    (255, 105, 180),
    (0, 128, 128),
    (150, 75, 0),
)


def slice_contours(mask2d: np.ndarray) -> list[np.ndarray]:
    """Closed contours of a 2-D binary mask as (N, 2) (row, col), last point not repeated."""
    from skimage.measure import find_contours

    padded = np.pad(np.asarray(mask2d, dtype=np.float32), 1)
    out = []
    for contour in find_contours(padded, 0.5):
        pts = contour - 1.0
        if len(pts) > 1 and np.allclose(pts[0], pts[-1]):
            pts = pts[:-1]
        if len(pts) >= 3:
            out.append(pts)
    return out


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
) -> Dataset:
    """The data set with file meta, the CT's patient/study attributes, new SOP and series
    instance UIDs and the RT Series / Structure Set identification (no ROI yet)."""
    sop_uid = generate_uid()
    ds = Dataset()
    ds.file_meta = _file_meta(sop_uid)
    copy_study_attributes(first, ds)
    ds.SOPClassUID = RT_STRUCTURE_SET_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid()
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
    return ds


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
    number: int, name: str, frame_uid: str, algorithm: str, contours: list[Dataset]
) -> tuple[Dataset, Dataset, Dataset]:
    """(Structure Set ROI, ROI Contour, RT ROI Observations) items of ROI ``number``."""
    roi = Dataset()
    roi.ROINumber = number
    roi.ReferencedFrameOfReferenceUID = frame_uid
    roi.ROIName = name
    roi.ROIGenerationAlgorithm = algorithm

    roi_contour = Dataset()
    roi_contour.ROIDisplayColor = list(ROI_COLOURS[(number - 1) % len(ROI_COLOURS)])
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
) -> Dataset:
    """An RT Structure Set (with file meta) of ``labels`` on the CT ``ct_datasets``.

    ``ct_datasets``: the planning CT's slices, one dataset each, any order (headers
    are enough; pixel data is not read). ``labels``: integer (z, y, x) mask on the CT
    grid in ``sort_slices`` order, 0 = background, each other value one lesion.
    ``names``: ROI name per label (default ``Lesion <label>``). One ROI per label
    present in the mask, ROI numbers 1.. in ascending label order. ``ValueError``
    for an empty or ill-fitting mask (``prepare_export``) or a CT without
    FrameOfReferenceUID.
    """
    slices, arr, present = prepare_export(
        ct_datasets, labels, "a structure set needs at least one ROI"
    )
    names = dict(names or {})
    first = slices[0]
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
        now=now or dt.datetime.now(),
    )
    ds.ReferencedFrameOfReferenceSequence = DicomSequence(
        [_referenced_frame_of_reference(slices, frame_uid)]
    )
    rois, contours, observations = [], [], []
    for number, label in enumerate(present, start=1):
        name = str(names.get(label) or f"Lesion {label}")[:64]
        items = _contour_items(arr == label, slices, geoms)
        roi, roi_contour, obs = _roi_items(number, name, frame_uid, roi_generation_algorithm, items)
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

"""DICOM RT Structure Set export of a lesion label mask drawn on the planning CT.

What treatment planning systems import: one ROI per lesion (RTROIInterpretedType
``GTV``), CLOSED_PLANAR contours in patient millimetres on each CT slice the lesion
touches, every contour referencing its slice's SOPInstanceUID. The structure set
shares the CT's patient, study and frame of reference and gets new series/instance
UIDs.

Grid convention: mask slice ``k`` is the ``k``-th CT slice ordered along the slice
normal (``sort_slices``, the order ``ml.imaging.dicom_io.load_series`` stacks them
in), mask row ``r`` / column ``c`` are the slice's pixel row / column. Pixel
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

Pure pydicom / NumPy / scikit-image (no SimpleITK, no Django).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
# The conventional (retired Detached Study Management) class of RTReferencedStudySequence.
DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"
MANUFACTURER = "LesionLoop"

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

# Study-level attributes copied from the CT (General Study / Patient modules).
_COPIED = (
    "SpecificCharacterSet",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "StudyDescription",
    "AccessionNumber",
    "ReferringPhysicianName",
)


@dataclass(frozen=True)
class SliceGeometry:
    """Where one CT slice's pixels are in patient millimetres."""

    position: np.ndarray  # (3,) ImagePositionPatient: the centre of pixel (0, 0)
    row_dir: np.ndarray  # (3,) unit vector along a row (increasing column index)
    col_dir: np.ndarray  # (3,) unit vector along a column (increasing row index)
    row_spacing: float  # PixelSpacing[0]: mm between adjacent rows
    col_spacing: float  # PixelSpacing[1]: mm between adjacent columns

    @classmethod
    def of(cls, ds: Dataset) -> SliceGeometry:
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            if keyword not in ds:
                raise ValueError(f"CT slice {_sop(ds)} has no {keyword}")
        iop = np.asarray([float(v) for v in ds.ImageOrientationPatient], dtype=float)
        row_dir = iop[:3] / np.linalg.norm(iop[:3])
        col_dir = iop[3:] / np.linalg.norm(iop[3:])
        spacing = [float(v) for v in ds.PixelSpacing]
        return cls(
            position=np.asarray([float(v) for v in ds.ImagePositionPatient], dtype=float),
            row_dir=row_dir,
            col_dir=col_dir,
            row_spacing=spacing[0],
            col_spacing=spacing[1],
        )

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_dir, self.col_dir)

    def to_patient(self, rc: np.ndarray) -> np.ndarray:
        """(N, 2) (row, col), fractional allowed -> (N, 3) patient mm."""
        rc = np.asarray(rc, dtype=float).reshape(-1, 2)
        return (
            self.position
            + np.outer(rc[:, 1] * self.col_spacing, self.row_dir)
            + np.outer(rc[:, 0] * self.row_spacing, self.col_dir)
        )

    def to_pixel(self, xyz: np.ndarray) -> np.ndarray:
        """(N, 3) patient mm -> (N, 2) fractional (row, col) in this slice's plane."""
        d = np.asarray(xyz, dtype=float).reshape(-1, 3) - self.position
        return np.stack(
            [d @ self.col_dir / self.row_spacing, d @ self.row_dir / self.col_spacing], 1
        )


def _sop(ds: Dataset) -> str:
    return str(ds.get("SOPInstanceUID", "?"))


def sort_slices(datasets: Sequence[Dataset]) -> list[Dataset]:
    """Single-frame slices of one series, ordered along the slice normal (as ingest does).

    Exact copies (the same SOPInstanceUID twice) are dropped, like ingest drops them.
    Raises ``ValueError`` for multi-frame objects, slices of several series or
    orientations, two different slices at one position, or fewer than one slice.
    """
    if not datasets:
        raise ValueError("no CT slices given")
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(series) != 1:
        raise ValueError(f"CT slices of {len(series)} series given; expected one")
    for ds in datasets:
        if int(ds.get("NumberOfFrames") or 1) > 1:
            raise ValueError(
                f"CT object {_sop(ds)} is multi-frame (enhanced CT); export needs single-frame "
                "CT slices"
            )
    geoms = [SliceGeometry.of(ds) for ds in datasets]
    ref = geoms[0]
    for ds, g in zip(datasets, geoms, strict=True):
        if (
            np.max(np.abs(g.row_dir - ref.row_dir)) > 1e-3
            or np.max(np.abs(g.col_dir - ref.col_dir)) > 1e-3
        ):
            raise ValueError(f"CT slice {_sop(ds)} has a different orientation from the others")
    dist = np.array([g.position @ ref.normal for g in geoms])
    order = np.argsort(dist, kind="stable")
    out: list[Dataset] = []
    last = None
    for i in order:
        ds = datasets[int(i)]
        if last is not None and abs(dist[i] - dist[last]) < 1e-2:
            if _sop(ds) == _sop(datasets[last]):
                continue
            raise ValueError(
                f"two different CT slices at one position: {_sop(datasets[last])} and {_sop(ds)}"
            )
        out.append(ds)
        last = int(i)
    return out


@dataclass(frozen=True)
class CtGrid:
    """The regular grid the sorted slices span, in SimpleITK's (x, y, z) terms."""

    origin_xyz: tuple[float, float, float]
    spacing_xyz: tuple[float, float, float]
    direction: tuple[float, ...]  # 9 values, row-major, columns = row_dir, col_dir, normal
    size_xyz: tuple[int, int, int]

    def mismatch(
        self,
        *,
        origin_xyz: Sequence[float],
        spacing_xyz: Sequence[float],
        direction: Sequence[float],
        size_xyz: Sequence[int],
    ) -> str | None:
        """Why another grid is not this one (tolerance: a tenth of a voxel), or None."""
        if tuple(int(v) for v in size_xyz) != self.size_xyz:
            return f"size {tuple(size_xyz)} vs the DICOM slices' {self.size_xyz}"
        spacing = np.asarray(self.spacing_xyz)
        if np.any(np.abs(np.asarray(spacing_xyz, dtype=float) - spacing) > 0.1 * spacing):
            return f"spacing {tuple(spacing_xyz)} vs {self.spacing_xyz} mm"
        if np.max(np.abs(np.asarray(direction, dtype=float) - np.asarray(self.direction))) > 1e-3:
            return "a different orientation"
        if np.linalg.norm(np.asarray(origin_xyz, dtype=float) - self.origin_xyz) > 0.1 * float(
            spacing.min()
        ):
            return f"origin {tuple(origin_xyz)} vs {self.origin_xyz} mm"
        return None


def ct_grid(sorted_slices: Sequence[Dataset]) -> CtGrid:
    """The grid of slices already ordered by ``sort_slices`` (median slice step)."""
    geoms = [SliceGeometry.of(ds) for ds in sorted_slices]
    ref = geoms[0]
    dist = np.array([g.position @ ref.normal for g in geoms])
    step = (
        float(np.median(np.diff(dist)))
        if len(dist) > 1
        else float(sorted_slices[0].get("SliceThickness") or 1.0)
    )
    direction = np.stack([ref.row_dir, ref.col_dir, ref.normal], axis=1).ravel()
    return CtGrid(
        origin_xyz=tuple(float(v) for v in ref.position),  # type: ignore[arg-type]
        spacing_xyz=(ref.col_spacing, ref.row_spacing, step),
        direction=tuple(float(v) for v in direction),
        size_xyz=(int(sorted_slices[0].Columns), int(sorted_slices[0].Rows), len(sorted_slices)),
    )


def _check_mask(sorted_slices: Sequence[Dataset], labels: np.ndarray) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 3:
        raise ValueError(f"the label mask must be 3-D (z, y, x); got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        raise ValueError(f"the label mask must hold integer labels; got {arr.dtype}")
    rows, cols = int(sorted_slices[0].Rows), int(sorted_slices[0].Columns)
    if arr.shape != (len(sorted_slices), rows, cols):
        raise ValueError(
            f"label mask of shape {arr.shape} does not fit {len(sorted_slices)} CT slices of "
            f"{rows}x{cols} pixels"
        )
    return arr


def prepare_export(
    ct_datasets: Sequence[Dataset], labels: np.ndarray, what: str
) -> tuple[list[Dataset], np.ndarray, list[int]]:
    """(sorted slices, checked mask, labels present) for a DICOM export of ``labels``;
    ``ValueError`` for a mask that does not fit or holds no lesion (``what`` names the
    object for the message, e.g. "a structure set needs at least one ROI")."""
    slices = sort_slices(ct_datasets)
    arr = _check_mask(slices, labels)
    present = lesion_labels(arr)
    if not present:
        raise ValueError(f"the label mask is empty: {what}")
    return slices, arr, present


def lesion_labels(labels: np.ndarray) -> list[int]:
    """The nonzero label values present, ascending."""
    return [int(v) for v in np.unique(labels) if v != 0]


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
    present in the mask, ROI numbers 1.. in ascending label order.
    """
    slices, arr, present = prepare_export(
        ct_datasets, labels, "a structure set needs at least one ROI"
    )
    names = dict(names or {})
    first = slices[0]
    frame_uid = str(first.get("FrameOfReferenceUID", ""))
    if not frame_uid:
        raise ValueError(f"CT slice {_sop(first)} has no FrameOfReferenceUID")
    geoms = [SliceGeometry.of(ds) for ds in slices]
    now = now or dt.datetime.now()

    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RT_STRUCTURE_SET_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    for keyword in _COPIED:
        if keyword in first:
            setattr(ds, keyword, first.data_element(keyword).value)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate"):
        if keyword not in ds:
            setattr(ds, keyword, "")
    for keyword in ("StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName"):
        if keyword not in ds:
            setattr(ds, keyword, "")
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
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame_item])

    rois, contours, observations = [], [], []
    for number, label in enumerate(present, start=1):
        name = str(names.get(label) or f"Lesion {label}")[:64]
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = frame_uid
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = roi_generation_algorithm
        rois.append(roi)

        items = []
        lesion = arr == label
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
        roi_contour = Dataset()
        roi_contour.ROIDisplayColor = list(ROI_COLOURS[(number - 1) % len(ROI_COLOURS)])
        roi_contour.ContourSequence = DicomSequence(items)
        roi_contour.ReferencedROINumber = number
        contours.append(roi_contour)

        obs = Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        obs.ROIObservationLabel = name[:16]
        obs.RTROIInterpretedType = "GTV"
        obs.ROIInterpreter = ""
        observations.append(obs)
    ds.StructureSetROISequence = DicomSequence(rois)
    ds.ROIContourSequence = DicomSequence(contours)
    ds.RTROIObservationsSequence = DicomSequence(observations)
    return ds


def dataset_bytes(ds: Dataset) -> bytes:
    """A Part 10 file (preamble, file meta, Explicit VR Little Endian) as bytes."""
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


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

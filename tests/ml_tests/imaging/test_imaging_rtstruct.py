"""DICOM RTSTRUCT and SEG export of a label mask on the planning CT, and the way back.

Hand-made CT headers (pydicom, no pixels) with anisotropic spacing, flipped axes and
shuffled file order; one synthetic tiny study for the real geometry. Round trips:
rasterised contours give back the mask's voxels; highdicom reads the SEG back.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from ml.imaging.dicom_export import dataset_bytes
from ml.imaging.dicom_seg import build_segmentation
from ml.imaging.errors import IngestError
from ml.imaging.geometry import ct_grid, sort_slices
from ml.imaging.reference_ct import load_reference_ct
from ml.imaging.rtstruct import RT_STRUCTURE_SET_STORAGE, build_rtstruct, read_rtstruct_masks
from tests.ml_tests.imaging.contour_checks import assert_half_a_voxel_from_centres, contour_points

ROOT_UID = "1.2.826.0.1.3680043.8.498.7"
IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
FLIPPED = ((-1.0, 0.0, 0.0), (0.0, -1.0, 0.0))  # rows right->left, columns anterior<-posterior


def make_ct(
    shape: tuple[int, int, int],
    *,
    spacing: tuple[float, float, float] = (2.5, 0.8, 0.6),  # (slice step, row, column) mm
    origin: tuple[float, float, float] = (-10.0, -20.0, 5.0),
    iop: tuple[tuple[float, ...], tuple[float, ...]] = IDENTITY,
    order: str = "ascending",
) -> list[Dataset]:
    """CT slice headers; slice k (ascending along the normal) is at origin + k*step*normal.

    ``order``: the list order handed over: ascending, descending or shuffled.
    """
    nz, rows, cols = shape
    row_dir, col_dir = np.asarray(iop[0]), np.asarray(iop[1])
    normal = np.cross(row_dir, col_dir)
    study, series, frame = (f"{ROOT_UID}.{i}" for i in (1, 2, 3))
    out = []
    for k in range(nz):
        ds = Dataset()
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = f"{ROOT_UID}.10.{k}"
        ds.Modality = "CT"
        ds.PatientName = "TEST^EXPORT"
        ds.PatientID = "P-EXPORT"
        ds.PatientBirthDate = "19500101"
        ds.PatientSex = "F"
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.FrameOfReferenceUID = frame
        ds.StudyID = "1"
        ds.StudyDate = "20240101"
        ds.StudyTime = "083000"
        ds.AccessionNumber = "A1"
        ds.ReferringPhysicianName = ""
        ds.SeriesNumber = 2
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [float(v) for v in np.asarray(origin) + k * spacing[0] * normal]
        ds.ImageOrientationPatient = [*iop[0], *iop[1]]
        ds.PixelSpacing = [spacing[1], spacing[2]]
        ds.SliceThickness = spacing[0]
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        out.append(ds)
    if order == "descending":
        out = out[::-1]
    elif order == "shuffled":
        out = [out[i] for i in np.random.default_rng(0).permutation(nz)]
    return out


def roundtrip(ds: Dataset) -> Dataset:
    return pydicom.dcmread(io.BytesIO(dataset_bytes(ds)))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def odd_lesions(shape: tuple[int, int, int]) -> np.ndarray:
    """Label 3: one voxel; label 7: an L over two slices; label 9: a ring with a hole;
    label 12: a 2-voxel-radius ball (anisotropic voxels make it an ellipsoid)."""
    labels = np.zeros(shape, dtype=np.uint16)
    labels[1, 2, 3] = 3
    labels[2:4, 6:11, 2] = 7
    labels[2:4, 10, 2:6] = 7
    labels[4, 2:7, 9:14] = 9
    labels[4, 4, 11] = 0  # the hole
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    labels[(z - 3) ** 2 + (y - 12) ** 2 + (x - 12) ** 2 <= 4] = 12
    return labels


def test_one_voxel_is_a_diamond_around_its_centre_in_mm() -> None:
    # Hand-checked: voxel (z=1, row=2, col=3), origin (-10, -20, 5), step 2.5, rows 0.8 mm,
    # columns 0.6 mm apart: centre (-10 + 3*0.6, -20 + 2*0.8, 5 + 2.5) = (-8.2, -18.4, 7.5);
    # the contour passes half a pixel away: x +- 0.3, y +- 0.4.
    ct = make_ct((3, 5, 6), order="descending")
    labels = np.zeros((3, 5, 6), dtype=np.uint16)
    labels[1, 2, 3] = 5
    rs = roundtrip(build_rtstruct(ct, labels, {5: "Lesion 5"}))
    (roi,) = rs.ROIContourSequence
    (contour,) = roi.ContourSequence
    pts = np.asarray([float(v) for v in contour.ContourData]).reshape(-1, 3)
    expected = {(-8.5, -18.4, 7.5), (-7.9, -18.4, 7.5), (-8.2, -18.8, 7.5), (-8.2, -18.0, 7.5)}
    assert {tuple(np.round(p, 4)) for p in pts} == expected
    assert contour.NumberOfContourPoints == 4 and contour.ContourGeometricType == "CLOSED_PLANAR"
    assert contour.ContourImageSequence[0].ReferencedSOPInstanceUID == f"{ROOT_UID}.10.1"


# (geometry name, shape (z, rows, cols), spacing (step, row, col), origin, orientation, order)
GEOMETRIES = [
    ("identity", (6, 15, 17), (2.5, 0.8, 0.6), (-10.0, -20.0, 5.0), IDENTITY, "ascending"),
    ("flipped-axes", (6, 15, 17), (3.0, 0.5, 1.1), (40.0, 30.0, -60.0), FLIPPED, "descending"),
    ("shuffled-files", (7, 16, 15), (1.25, 1.3, 0.7), (0.3, -0.7, -100.0), IDENTITY, "shuffled"),
]
by_geometry = pytest.mark.parametrize(
    ("name", "shape", "spacing", "origin", "iop", "order"),
    GEOMETRIES,
    ids=[g[0] for g in GEOMETRIES],
)


@by_geometry
def test_contours_rasterise_back_to_the_mask(
    name: str,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float],
    iop: tuple[tuple[float, ...], tuple[float, ...]],
    order: str,
) -> None:
    ct = make_ct(shape, spacing=spacing, origin=origin, iop=iop, order=order)
    labels = odd_lesions(shape)
    names = {3: "Lesion 3", 7: "Lesion 7", 9: "Lesion 9", 12: "Lesion 12"}
    rs = roundtrip(build_rtstruct(ct, labels, names))
    masks = read_rtstruct_masks(rs, make_ct(shape, spacing=spacing, origin=origin, iop=iop))
    assert set(masks) == set(names.values())
    for label, roi_name in names.items():
        truth = labels == label
        assert dice(masks[roi_name], truth) >= 0.9, (name, label)
        # Contours sit half-way between lesion and background pixels: the way back is exact.
        assert np.array_equal(masks[roi_name], truth), (name, label)


@by_geometry
def test_every_contour_point_is_half_a_pixel_from_a_lesion_voxel_centre(
    name: str,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float],
    iop: tuple[tuple[float, ...], tuple[float, ...]],
    order: str,
) -> None:
    """Voxel (k, r, c) -> mm by the CT geometry (independently of the exporter) must be
    within half a voxel of the contour, in the same slice plane."""
    ct = make_ct(shape, spacing=spacing, origin=origin, iop=iop, order=order)
    labels = odd_lesions(shape)
    rs = roundtrip(build_rtstruct(ct, labels))
    row_dir, col_dir = np.asarray(iop[0]), np.asarray(iop[1])
    normal = np.cross(row_dir, col_dir)
    numbers = {int(r.ROINumber): str(r.ROIName) for r in rs.StructureSetROISequence}
    for roi in rs.ROIContourSequence:
        label = int(numbers[int(roi.ReferencedROINumber)].split()[-1])
        k, r, c = np.nonzero(labels == label)
        centres = (
            np.asarray(origin)
            + np.outer(k * spacing[0], normal)
            + np.outer(r * spacing[1], col_dir)
            + np.outer(c * spacing[2], row_dir)
        )
        for item in roi.ContourSequence:
            pts = np.asarray([float(v) for v in item.ContourData]).reshape(-1, 3)
            slice_k = int(str(item.ContourImageSequence[0].ReferencedSOPInstanceUID).split(".")[-1])
            assert np.allclose((pts - origin) @ normal, slice_k * spacing[0], atol=1e-3)
            near = np.linalg.norm(pts[:, None, :] - centres[None, k == slice_k, :], axis=2).min(1)
            assert near.max() <= 0.5 * max(spacing[1:]) + 1e-3, (name, label)


def test_structure_set_header() -> None:
    ct = make_ct((4, 10, 12), order="shuffled")
    labels = np.zeros((4, 10, 12), dtype=np.uint16)
    labels[1, 2:4, 2:4] = 2
    labels[2, 6:8, 6:9] = 4
    rs = roundtrip(build_rtstruct(ct, labels, {2: "Lesion 2", 4: "Lesion 4"}))
    first = ct[0]
    expected = [
        ("Modality", "RTSTRUCT"),
        ("SOPClassUID", RT_STRUCTURE_SET_STORAGE),
        ("Manufacturer", "LesionLoop"),
        ("PatientID", "P-EXPORT"),
        ("PatientName", "TEST^EXPORT"),
        ("StudyInstanceUID", first.StudyInstanceUID),
        ("FrameOfReferenceUID", first.FrameOfReferenceUID),
        ("StructureSetLabel", "LesionLoop"),
    ]
    for keyword, value in expected:
        assert str(rs.get(keyword)) == str(value), keyword
    assert rs.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert rs.file_meta.MediaStorageSOPInstanceUID == rs.SOPInstanceUID
    assert rs.SeriesInstanceUID != first.SeriesInstanceUID
    assert rs.SOPInstanceUID not in {d.SOPInstanceUID for d in ct}
    assert [r.ROIName for r in rs.StructureSetROISequence] == ["Lesion 2", "Lesion 4"]
    assert [o.RTROIInterpretedType for o in rs.RTROIObservationsSequence] == ["GTV", "GTV"]
    colours = [tuple(c.ROIDisplayColor) for c in rs.ROIContourSequence]
    assert len(set(colours)) == 2
    (frame,) = rs.ReferencedFrameOfReferenceSequence
    (study,) = frame.RTReferencedStudySequence
    (series,) = study.RTReferencedSeriesSequence
    assert series.SeriesInstanceUID == first.SeriesInstanceUID
    # Every CT slice, in slice order.
    assert [i.ReferencedSOPInstanceUID for i in series.ContourImageSequence] == [
        f"{ROOT_UID}.10.{k}" for k in range(4)
    ]


# (case, how to break the input, error text)
REFUSALS = [
    ("empty mask", "empty", "empty"),
    ("mask of the wrong shape", "shape", "does not fit"),
    ("two slices at one position", "duplicate", "one position"),
    ("multi-frame CT", "multiframe", "multi-frame"),
    ("two series", "series", "series"),
]


@pytest.mark.parametrize(("case", "breakage", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals(case: str, breakage: str, message: str) -> None:
    ct = make_ct((3, 5, 6))
    labels = np.zeros((3, 5, 6), dtype=np.uint16)
    labels[1, 1, 1] = 1
    if breakage == "empty":
        labels[:] = 0
    elif breakage == "shape":
        labels = np.ones((3, 6, 5), dtype=np.uint16)
    elif breakage == "duplicate":
        ct[2].ImagePositionPatient = list(ct[1].ImagePositionPatient)
    elif breakage == "multiframe":
        ct[0].NumberOfFrames = 3
    elif breakage == "series":
        ct[0].SeriesInstanceUID = generate_uid()
    with pytest.raises(ValueError, match=message):
        build_rtstruct(ct, labels)
    with pytest.raises(ValueError, match=message):
        build_segmentation(ct, labels)


def test_exact_copy_of_a_slice_is_dropped_like_ingest_does() -> None:
    ct = make_ct((3, 5, 6))
    slices = sort_slices([*ct, ct[1]])
    assert [s.SOPInstanceUID for s in slices] == [f"{ROOT_UID}.10.{k}" for k in range(3)]


def test_segmentation_round_trip_with_highdicom() -> None:
    import highdicom as hd

    shape = (6, 15, 17)
    ct = make_ct(shape, order="shuffled")
    labels = odd_lesions(shape)
    seg = build_segmentation(ct, labels, {3: "Lesion 3", 12: "Lesion 12"})
    back = hd.seg.segread(io.BytesIO(dataset_bytes(seg)))
    assert back.number_of_segments == 4
    assert back.SegmentationType == "BINARY"
    assert back.StudyInstanceUID == ct[0].StudyInstanceUID
    assert back.FrameOfReferenceUID == ct[0].FrameOfReferenceUID
    descriptions = [back.get_segment_description(n) for n in (1, 2, 3, 4)]
    assert [d.segment_label for d in descriptions] == [
        "Lesion 3",
        "Lesion 7",
        "Lesion 9",
        "Lesion 12",
    ]
    assert {d.algorithm_type.value for d in descriptions} == {"MANUAL"}
    assert {d.segmented_property_type.value for d in descriptions} == {"108369006"}  # Neoplasm
    uids = [s.SOPInstanceUID for s in sort_slices(ct)]
    pixels = back.get_pixels_by_source_instance(uids, assert_missing_frames_are_empty=True)
    assert pixels.shape == (*shape, 4)
    for i, label in enumerate((3, 7, 9, 12)):
        truth = labels == label
        assert int(pixels[..., i].sum()) == int(truth.sum()), label
        assert np.array_equal(pixels[..., i] > 0, truth), label


# --- the real geometry: a tiny synthetic study (seed 11, 3 lesions) ----------------------


def _truth(tiny_study: Path) -> tuple[dict, sitk.Image, np.ndarray]:
    truth = json.loads((tiny_study / "truth.json").read_text())
    image = sitk.ReadImage(str(tiny_study / "ground_truth_labels_ct.nii.gz"))
    return truth, image, sitk.GetArrayFromImage(image).astype(np.uint16)


@pytest.mark.parametrize("layout", ["folder", "zip"])
def test_synthetic_study_export_matches_the_ct_grid(
    tiny_study: Path, tmp_path: Path, layout: str
) -> None:
    truth, image, labels = _truth(tiny_study)
    if layout == "folder":
        source = tmp_path / "upload"
        shutil.copytree(tiny_study / "dicom", source / "nested" / "deeper")
    else:
        source = tmp_path / "archive.zip"
        with zipfile.ZipFile(source, "w") as zf:
            for p in sorted((tiny_study / "dicom").rglob("*.dcm"), reverse=True):
                zf.write(p, p.relative_to(tiny_study).as_posix())
    slices = load_reference_ct(source, truth["dicom"]["ct_series_uid"])
    assert len(slices) == labels.shape[0]
    assert (
        ct_grid(slices).mismatch(
            origin_xyz=image.GetOrigin(),
            spacing_xyz=image.GetSpacing(),
            direction=image.GetDirection(),
            size_xyz=image.GetSize(),
        )
        is None
    )
    rs = roundtrip(build_rtstruct(slices, labels))
    masks = read_rtstruct_masks(rs, slices)
    present = [int(v) for v in np.unique(labels) if v]
    assert len(present) == 3
    for label in present:
        assert dice(masks[f"Lesion {label}"], labels == label) >= 0.9, label
    # Lesion voxel -> mm through the NIfTI's (ingest's) geometry vs the contour's mm.
    numbers = {int(r.ROINumber): str(r.ROIName) for r in rs.StructureSetROISequence}
    for roi in rs.ROIContourSequence:
        label = int(numbers[int(roi.ReferencedROINumber)].split()[-1])
        for item in roi.ContourSequence:
            pts = contour_points(item)
            ks = {int(round(image.TransformPhysicalPointToContinuousIndex(p)[2])) for p in pts}
            (k,) = ks
            assert_half_a_voxel_from_centres(pts, image, labels[k] == label, k)
            ref = str(item.ContourImageSequence[0].ReferencedSOPInstanceUID)
            assert ref == str(slices[k].SOPInstanceUID)


def test_missing_series_and_missing_upload_are_ingest_errors(
    tiny_study: Path, tmp_path: Path
) -> None:
    cases = [
        (tiny_study / "dicom", "1.2.3.4.5", "no_ct"),
        (tmp_path / "nowhere", "1.2.3", "not_found"),
    ]
    for source, uid, code in cases:
        with pytest.raises(IngestError) as info:
            load_reference_ct(source, uid)
        assert info.value.code == code

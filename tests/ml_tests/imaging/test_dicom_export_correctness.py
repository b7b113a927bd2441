"""What independent readers see in our RTSTRUCT and SEG: distinct ROI colours, holes
that survive both of plastimatch's contour rules, stable UIDs per approval, provenance
in standard attributes, SEG geometry from the slice positions, and no dciodvfy error."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from skimage.draw import polygon

from ml.imaging.dicom_export import (
    AUTOMATIC,
    MANUAL,
    ROI_COLOURS,
    SEMIAUTOMATIC,
    Provenance,
    dataset_bytes,
    roi_colour,
)
from ml.imaging.dicom_seg import build_segmentation
from ml.imaging.geometry import sort_slices
from ml.imaging.rtstruct import _signed_area, build_rtstruct, slice_contours
from tests.ml_tests.imaging.ct_series import ct_image, ellipsoid, ring, write_ct_series


def test_roi_colours_are_distinct_however_many() -> None:
    colours = [roi_colour(n) for n in range(1, 1001)]
    assert colours[:12] == list(ROI_COLOURS)
    assert len(set(colours)) == 1000
    assert all(0 <= v <= 255 for c in colours for v in c)


def _shape(rows: list[str]) -> np.ndarray:
    return np.array([[ch == "#" for ch in row] for row in rows], dtype=bool)


# (name, slice mask drawn as text, islands = polygons expected)
SHAPES = [
    ("ring", ["......", ".####.", ".#..#.", ".#..#.", ".####.", "......"], 1),
    ("ring with a 1-pixel hole", [".....", ".###.", ".#.#.", ".###.", "....."], 1),
    ("two holes", ["#######", "#.#.###", "#######", "###.#.#", "#######"], 1),
    ("island in a hole", ["#######", "#.....#", "#.###.#", "#.#.#.#", "#.###.#", "#.....#", "#######"], 2),
    ("C shape, no hole", ["####", "#...", "#...", "####"], 1),
    ("two blobs", ["##..##", "##..##"], 2),
    ("one pixel", ["#"], 1),
]  # fmt: skip


def _rasterise(polys: list[np.ndarray], shape: tuple[int, int], rule: str) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    for pts in polys:
        rr, cc = polygon(pts[:, 0], pts[:, 1], shape=shape)
        fill = np.zeros(shape, dtype=bool)
        fill[rr, cc] = True
        out = out ^ fill if rule == "xor" else out | fill
    return out


@pytest.mark.parametrize(("name", "rows", "islands"), SHAPES, ids=[s[0] for s in SHAPES])
def test_holes_are_joined_so_or_and_xor_agree(name: str, rows: list[str], islands: int) -> None:
    mask = _shape(rows)
    polys = slice_contours(mask)
    assert len(polys) == islands
    for rule in ("or", "xor"):
        assert np.array_equal(_rasterise(polys, mask.shape, rule), mask), rule
    assert len({_signed_area(p) > 0 for p in polys}) == 1  # no inner (hole) contour left


@pytest.fixture(scope="module")
def small_ct(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, np.ndarray]:
    out = tmp_path_factory.mktemp("ct")
    slices = write_ct_series(
        out, shape_dhw=(12, 40, 48), spacing_mm=(1.25, 0.9, 0.8), spacing_header_mm=2.5
    )
    shape = (12, 40, 48)
    labels = np.zeros(shape, dtype=np.uint16)
    labels[ellipsoid(shape, (5, 12, 12), (2, 4, 4))] = 1
    labels[ring(shape, (6, 26, 30), 7, 3, 2)] = 2
    labels[ellipsoid(shape, (8, 30, 10), (1.5, 3, 3))] = 3
    return out, slices, labels


PROVENANCE = Provenance(
    uid_seed="1.2.3.4/7",
    approved=True,
    reviewer="cora",
    reviewed_at=dt.datetime(2026, 11, 29, 10, 30, 0),
    model_version="v4",
    algorithms={1: AUTOMATIC, 2: SEMIAUTOMATIC, 3: MANUAL},
)


def test_uids_are_derived_from_the_approval(small_ct: tuple[Path, list, np.ndarray]) -> None:
    _, slices, labels = small_ct
    again = Provenance(uid_seed="1.2.3.4/7")
    other = Provenance(uid_seed="1.2.3.4/8")
    rt = [build_rtstruct(slices, labels, provenance=p) for p in (PROVENANCE, again, other)]
    seg = [build_segmentation(slices, labels, provenance=p) for p in (PROVENANCE, again, other)]
    for objs in (rt, seg):
        assert objs[0].SOPInstanceUID == objs[1].SOPInstanceUID != objs[2].SOPInstanceUID
        assert objs[0].SeriesInstanceUID == objs[1].SeriesInstanceUID
        assert len(str(objs[0].SOPInstanceUID)) <= 64
    assert rt[0].SOPInstanceUID != seg[0].SOPInstanceUID
    fresh = [build_rtstruct(slices, labels).SOPInstanceUID for _ in range(2)]
    assert fresh[0] != fresh[1]
    # One approval exported twice is the same object, byte for byte.
    assert dataset_bytes(rt[0]) == dataset_bytes(
        build_rtstruct(slices, labels, provenance=PROVENANCE)
    )


def test_provenance_is_in_standard_attributes(small_ct: tuple[Path, list, np.ndarray]) -> None:
    _, slices, labels = small_ct
    rt = build_rtstruct(slices, labels, provenance=PROVENANCE)
    assert (rt.ApprovalStatus, rt.ReviewerName, rt.ReviewDate, rt.ReviewTime) == (
        "APPROVED",
        "cora",
        "20261129",
        "103000",
    )
    rois = {int(r.ROINumber): r for r in rt.StructureSetROISequence}
    assert [rois[n].ROIGenerationAlgorithm for n in (1, 2, 3)] == [AUTOMATIC, SEMIAUTOMATIC, MANUAL]
    assert "v4" in rois[1].ROIGenerationDescription and "edited" in rois[2].ROIGenerationDescription
    assert build_rtstruct(slices, labels).ApprovalStatus == "UNAPPROVED"
    seg = build_segmentation(slices, labels, provenance=PROVENANCE)
    kinds = [str(s.SegmentAlgorithmType) for s in seg.SegmentSequence]
    assert kinds == [AUTOMATIC, SEMIAUTOMATIC, MANUAL]
    assert str(seg.SegmentSequence[0].SegmentAlgorithmName).startswith("LesionLoop")
    versions = [
        str(s.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion)
        for s in seg.SegmentSequence[:2]
    ]
    assert versions == ["v4", "v4"]


def test_seg_spacing_comes_from_the_slice_positions(
    small_ct: tuple[Path, list, np.ndarray],
) -> None:
    _, slices, labels = small_ct
    assert float(slices[0].SpacingBetweenSlices) == 2.5  # the header disagrees
    seg = build_segmentation(slices, labels)
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(measures.SpacingBetweenSlices) == pytest.approx(1.25)
    z = sorted(
        float(f.PlanePositionSequence[0].ImagePositionPatient[2])
        for f in seg.PerFrameFunctionalGroupsSequence
    )
    assert np.allclose(np.diff(z) % 1.25, 0, atol=1e-4) or np.allclose(
        np.diff(z) % 1.25, 1.25, atol=1e-4
    )


@pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) missing"
)
@pytest.mark.parametrize("fmt", ["rtstruct", "seg"])
def test_dciodvfy_reports_no_error(
    fmt: str, small_ct: tuple[Path, list, np.ndarray], tmp_path: Path
) -> None:
    _, slices, labels = small_ct
    obj = (build_rtstruct if fmt == "rtstruct" else build_segmentation)(
        slices, labels, provenance=PROVENANCE
    )
    path = tmp_path / f"{fmt}.dcm"
    path.write_bytes(dataset_bytes(obj))
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    errors = [
        line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")
    ]
    assert errors == []


# (geometry, shape (slices, rows, columns), spacing (slice, row, column) mm, position)
GEOMETRIES = [
    ("non-square anisotropic", (20, 448, 512), (1.25, 0.62, 0.49), "HFS"),
    ("head first prone", (16, 96, 112), (2.0, 0.9, 0.8), "HFP"),
    ("feet first supine", (16, 96, 112), (2.0, 0.9, 0.8), "FFS"),
]


def _lesions(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> np.ndarray:
    """Lesions of about 50, 400 and 2000 mm3 and a ring, on the CT grid."""
    labels = np.zeros(shape, dtype=np.uint16)
    d, h, w = shape
    centre = (d / 2, h / 2, w / 2)
    for label, (radius_mm, dy, dx) in enumerate(
        [(2.4, -0.3, -0.3), (4.6, 0.25, -0.25), (7.8, 0.0, 0.25)], 1
    ):
        radii = tuple(radius_mm / s for s in spacing)
        labels[ellipsoid(shape, (centre[0], h / 2 + dy * h, w / 2 + dx * w), radii)] = label
    outer, inner = 9.0 / spacing[1], 4.0 / spacing[1]
    labels[
        ring(shape, (centre[0], h * 0.78, w * 0.78), outer, inner, max(1, int(3 / spacing[0])))
    ] = 4
    return labels


@pytest.mark.skipif(shutil.which("plastimatch") is None, reason="plastimatch missing")
@pytest.mark.parametrize(
    ("geometry", "shape", "spacing", "position"), GEOMETRIES, ids=[g[0] for g in GEOMETRIES]
)
def test_plastimatch_rasterises_every_lesion(
    tmp_path: Path,
    geometry: str,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    position: str,
) -> None:
    slices = write_ct_series(
        tmp_path / "ct", shape_dhw=shape, spacing_mm=spacing, position=position
    )
    labels = _lesions(shape, spacing)
    voxel_mm3 = float(np.prod(spacing))
    assert (labels == 1).sum() * voxel_mm3 >= 50
    rt = build_rtstruct(slices, labels)
    (tmp_path / "rt.dcm").write_bytes(dataset_bytes(rt))
    reference = ct_image(list(sort_slices(slices)))
    for rule in ([], ["--xor-contours"]):
        out = tmp_path / ("xor" if rule else "or")
        subprocess.run(
            ["plastimatch", "convert", "--input", str(tmp_path / "rt.dcm"), "--referenced-ct",
             str(tmp_path / "ct"), "--output-prefix", str(out), "--prefix-format", "nrrd", *rule],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        for label in (1, 2, 3, 4):
            img = sitk.ReadImage(str(out / f"Lesion {label}.nrrd"))
            onto = sitk.Resample(img, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
            got = sitk.GetArrayFromImage(onto) > 0
            truth = labels == label
            dice = 2 * (got & truth).sum() / (got.sum() + truth.sum())
            assert dice >= 0.99, (rule, label, dice)


def test_ingest_reports_a_spacing_header_that_disagrees(
    small_ct: tuple[Path, list, np.ndarray],
) -> None:
    from ml.imaging.dicom_io import load_series, scan

    out, _slices, _labels = small_ct
    (series,), _ = scan(out)
    notes: list[str] = []
    image = load_series(series, notes)
    assert image.GetSpacing()[2] == pytest.approx(1.25)
    assert any(
        "SpacingBetweenSlices header says 2.5 mm" in n and "1.25 mm apart" in n for n in notes
    )

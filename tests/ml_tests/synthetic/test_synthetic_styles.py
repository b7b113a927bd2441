"""``generate_study(style=...)``: classic is today's generator byte for byte, varied
draws a wider distribution (head shapes, solid and faint lesions, lesions against the
dura and beside vessels, 3D / thick-slice MR, motion) whose truth still matches its
lesions and whose DICOM still ingests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from ml.synthetic import ACQUISITIONS, generate_study
from ml.synthetic.generator import _motion_ghosts, _mr_acquisition
from ml.synthetic.phantom import (
    DURA_DEPTH_MM,
    MCA_COURSE_MM,
    MCA_MAX_RADIUS_MM,
    VARIED_LESIONS,
    ellipsoid_depth,
    place_lesions,
)


def _tree_sha256(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


# Checksums of the whole study folder written by main's generator (commit 7dd192a)
# for the same arguments: the classic style must not change a byte.
CLASSIC = [
    (3, {"n_lesions": 2}, "28469c1e096b18e85becfc952c5a0403b6a0343819a33bcf6979a9346449e8e2"),
    (11, {}, "e5c853a64382e59707a1aa57c65a15ee223ad5d9b84cbd57149f93a6f0399067"),
]


@pytest.mark.parametrize("seed, kwargs, sha", CLASSIC)
def test_classic_is_unchanged(tmp_path: Path, seed: int, kwargs: dict, sha: str) -> None:
    generate_study(tmp_path / "s", seed=seed, grid="tiny", style="classic", **kwargs)
    assert _tree_sha256(tmp_path / "s") == sha


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("varied") / "s"
    return out, generate_study(out, seed=3, grid="tiny", n_lesions=2, style="varied")


def test_varied_differs_from_classic_and_is_reproducible(
    varied: tuple[Path, dict], tmp_path: Path
) -> None:
    out, truth = varied
    assert _tree_sha256(out) != CLASSIC[0][2]
    again = generate_study(tmp_path / "again", seed=3, grid="tiny", n_lesions=2, style="varied")
    assert again == truth
    assert _tree_sha256(tmp_path / "again") == _tree_sha256(out)
    style = truth["style"]
    assert style["name"] == "varied" and len(style["head_scale_xyz"]) == 3
    assert all(0.88 <= f <= 1.12 for f in style["head_scale_xyz"])
    assert style["mr"]["acquisition"] in ("3d_iso", "2d_thick", "3d")


def test_varied_truth_matches_its_lesions(varied: tuple[Path, dict]) -> None:
    out, truth = varied
    labels_img = sitk.ReadImage(str(out / "ground_truth_labels_ct.nii.gz"))
    labels = sitk.GetArrayFromImage(labels_img)
    assert set(np.unique(labels)) == set(range(truth["n_lesions"] + 1))
    for row in truth["lesions"]:
        # The lesion's centre (stretched with the head) lies inside its own label.
        idx = labels_img.TransformPhysicalPointToIndex(row["centre_xyz_mm"])
        if row["volume_mm3_ct"] > 500:
            assert labels[idx[2], idx[1], idx[0]] == row["label"], row["label"]
        assert row["volume_vox_ct"] == int((labels == row["label"]).sum())


def test_varied_dicom_ingests_and_lesions_enhance(
    varied: tuple[Path, dict], tmp_path: Path
) -> None:
    from ml.imaging.pipeline import prepare_study

    out, truth = varied
    meta = prepare_study(
        out, tmp_path / "prep", grid="tiny", ground_truth=out / "ground_truth_ct.nii.gz"
    )
    x = np.load(tmp_path / "prep" / "model_input.npy")
    gt = np.load(tmp_path / "prep" / "ground_truth.npy") > 0
    assert x.shape[0] == 2 and x.shape[1:] == gt.shape and np.isfinite(x).all()
    assert gt.any()
    assert meta["registration"]["ok"] if "ok" in meta["registration"] else True
    # Enhancing tissue is brighter than the head on average on the registered MR.
    head = np.abs(x[0] - x[0, 0, 0, 0]) > 1e-3
    assert x[0][gt].mean() > x[0][head & ~gt].mean()


def test_varied_lesions_include_dural_and_perivascular_ones() -> None:
    rng = np.random.default_rng(0)
    lesions = place_lesions(rng, 40, (100.0, 3000.0), VARIED_LESIONS)
    kinds = {les.kind for les in lesions}
    assert {"dural", "perivascular", "cortical", "deep"} <= kinds
    assert not all(les.necrotic for les in lesions if les.volume_mm3 > 1000)
    g = np.linspace(-1.0, 1.0, 21)
    offsets = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    for les in lesions:
        pts = les.centre_mm + offsets * les.extent_mm
        inside = pts[les.contains(pts)]
        if les.kind == "dural":  # reaches to within ~1.5 mm of the dura, never through it
            depth = ellipsoid_depth(inside[:, 0], inside[:, 1], inside[:, 2])
            assert (
                -(DURA_DEPTH_MM + 1.0 + 0.25 * les.extent_mm) < depth.max() < -DURA_DEPTH_MM + 0.5
            )
        if les.kind == "perivascular":  # 0.5-2 mm (+ lobulation) from an MCA's wall
            course = np.concatenate([MCA_COURSE_MM, MCA_COURSE_MM * [-1, 1, 1]])
            line = np.concatenate(
                [a + np.linspace(0, 1, 200)[:, None] * (b - a)
                 for part in (course[:3], course[3:]) for a, b in zip(part[:-1], part[1:], strict=True)]
            )  # fmt: skip
            gap = np.min(np.linalg.norm(inside[:, None] - line[None], axis=2)) - MCA_MAX_RADIUS_MM
            assert -0.5 < gap < 2.5 + 0.3 * les.extent_mm


@pytest.mark.parametrize(
    "kind, check",
    [
        ("3d_iso", lambda a, acq: a.mr_slice_mm == acq.mr_pixel_mm),
        ("2d_thick", lambda a, acq: min(a.mr_slice_mm) >= 4.0),
        ("3d", lambda a, acq: a == acq),
    ],
)
@pytest.mark.parametrize("grid", ["tiny", "lite", "paper"])
def test_mr_acquisition_kinds(kind, check, grid) -> None:
    acq = ACQUISITIONS[grid]
    assert check(_mr_acquisition(acq, kind), acq)


@pytest.mark.parametrize("fraction, ghosts", [(0.0, False), (0.1, True), (0.3, True)])
def test_motion_ghosts_appear_outside_the_object(fraction: float, ghosts: bool) -> None:
    sig = np.zeros((2, 64, 64), np.float32)
    sig[:, 24:40, 24:40] = 1000.0
    out = _motion_ghosts(np.random.default_rng(0), sig, fraction, 3.0)
    assert out.shape == sig.shape and out.dtype == np.float32 and np.isfinite(out).all()
    outside = out[:, :, 24:40].copy()
    outside[:, 20:44] = 0  # rows of the object and a margin for the shifts' blur
    assert bool(outside.max() > 20.0) == ghosts
    if not ghosts:  # no line moved: the image is unchanged
        np.testing.assert_allclose(out, sig, atol=1e-2)


def test_unknown_style_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="style"):
        generate_study(tmp_path / "x", seed=1, grid="tiny", style="fancy")

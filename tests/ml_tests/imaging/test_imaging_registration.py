"""Rigid MR->CT registration recovers known head motion and flags failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from ml.imaging.dicom_io import ingest
from ml.imaging.registration import register_mr_to_ct, rotation_angle_deg, transform_from_dict
from ml.synthetic import generate_study

CASES = [
    # (grid, seed, MR orientation, (angles deg xyz, translation mm xyz)); each pair has
    # its own CT and MR grids (spacing, field of view, slice thickness).
    ("tiny", 101, "axial", ((5.0, -4.0, 6.0), (12.0, -8.0, 15.0))),
    ("tiny", 102, "sagittal", ((-7.0, 3.0, -5.0), (-15.0, 10.0, -20.0))),
    ("tiny", 103, "axial", ((0.0, 8.0, 0.0), (25.0, 0.0, -5.0))),
    ("lite", 104, "sagittal", ((3.0, -6.0, 4.0), (-10.0, 18.0, 8.0))),
]


@pytest.mark.parametrize(
    ("grid", "seed", "orientation", "motion"), CASES, ids=[f"{c[0]}-{c[2]}-{c[1]}" for c in CASES]
)
def test_registration_recovers_known_motion(
    tmp_path: Path, grid: str, seed: int, orientation: str, motion: tuple
) -> None:  # fmt: skip
    truth = generate_study(tmp_path / "s", seed=seed, grid=grid, n_lesions=2,
                           mr_orientation=orientation, misalignment=motion)  # fmt: skip
    res = ingest(tmp_path / "s" / "dicom")
    assert res.ct.GetSpacing() != res.mr.GetSpacing()
    reg = register_mr_to_ct(res.ct, res.mr)
    expected = transform_from_dict(truth["transform"])
    centre = np.asarray(truth["head_centre_xyz_mm"])
    err_mm = np.linalg.norm(
        np.asarray(reg.transform.TransformPoint(tuple(centre)))
        - np.asarray(expected.TransformPoint(tuple(centre)))
    )
    r_est = np.asarray(reg.transform.GetMatrix()).reshape(3, 3)
    r_true = np.asarray(expected.GetMatrix()).reshape(3, 3)
    err_deg = rotation_angle_deg(r_est.T @ r_true)
    assert err_mm < 1.0, (err_mm, err_deg)
    assert err_deg < 1.0, (err_mm, err_deg)
    assert reg.ok, reg.message
    assert reg.quality["head_dice"] > 0.9


def test_implausible_motion_is_reported_not_hidden(tmp_path: Path) -> None:
    generate_study(tmp_path / "s", seed=105, grid="tiny", n_lesions=1, mr_orientation="axial",
                   misalignment=((0.0, 0.0, 45.0), (0.0, 0.0, 0.0)))  # fmt: skip
    res = ingest(tmp_path / "s" / "dicom")
    reg = register_mr_to_ct(res.ct, res.mr)
    assert reg.ok is False
    assert "registration looks wrong" in reg.message
    assert reg.quality["rotation_deg"] > 30 or reg.quality["head_dice"] < 0.85


def test_unrelated_mr_fails_quality_checks(tiny_study: Path) -> None:
    res = ingest(tiny_study / "dicom")
    rng = np.random.default_rng(0)
    noise = sitk.GetImageFromArray(
        rng.uniform(0, 1000, sitk.GetArrayViewFromImage(res.mr).shape).astype(np.float32)
    )
    noise.CopyInformation(res.mr)
    reg = register_mr_to_ct(res.ct, noise)
    assert reg.ok is False
    assert reg.message

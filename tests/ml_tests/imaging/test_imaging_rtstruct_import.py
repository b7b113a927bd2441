"""An RT Structure Set made by another program (a planning system's: GTVs, a PTV, organs
at risk, a hole written as a separate inner contour) becomes ground truth on the
planning CT; one drawn on another CT is refused by name."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from scipy import ndimage

from ml.imaging.dicom_io import ingest
from ml.imaging.errors import IngestError
from ml.imaging.pipeline import prepare_study
from ml.imaging.rtstruct_import import DEFAULT_ROI_PATTERN, import_rtstruct
from tests.ml_tests.imaging.tps import tps_rtstruct


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from ml.synthetic import generate_study

    out = tmp_path_factory.mktemp("tps")
    generate_study(out, seed=21, grid="tiny", n_lesions=2)
    ing = ingest(out / "dicom")
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "ground_truth_ct.nii.gz"))) > 0
    labels, n = ndimage.label(truth, structure=np.ones((3, 3, 3)))
    assert n >= 2
    first = pydicom.dcmread(
        sorted((out / "dicom" / "ct").glob("*.dcm"))[0], stop_before_pixels=True
    )
    # A ring-shaped lesion: the biggest one with a hole punched through its middle slices.
    big = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    zc, yc, xc = (int(v) for v in np.argwhere(big).mean(axis=0))
    ring = big.copy()
    ring[zc - 1 : zc + 2, yc - 1 : yc + 2, xc - 1 : xc + 2] = False
    other = (labels > 0) & ~big
    return {"dir": out, "ing": ing, "first": first, "ring": ring, "other": other}


def test_tps_structure_set_becomes_ground_truth(case: dict[str, Any]) -> None:
    ing, ring, other = case["ing"], case["ring"], case["other"]
    ptv = ndimage.binary_dilation(ring | other, iterations=2)
    brain = np.zeros_like(ring)
    brain[2:-2, 4:-4, 4:-4] = True
    ds = tps_rtstruct(
        case["first"],
        ing.ct,
        {"GTV1": ring, "gtv_met2": other, "PTV_1": ptv, "Brain": brain, "Eye_L": other},
    )
    result = import_rtstruct(
        ds,
        ing.ct,
        ct_frame_uid=str(case["first"].FrameOfReferenceUID),
        ct_series_uid=ing.ct_series.series_uid,
    )
    assert result.included == ["GTV1", "gtv_met2"]
    assert [row["roi"] for row in result.ignored] == ["PTV_1", "Brain", "Eye_L"]
    got = sitk.GetArrayFromImage(result.mask) > 0
    truth = ring | other
    assert np.array_equal(got, truth)  # the hole (a separate inner contour) is honoured


# (case, frame of reference, referenced series, code)
REFUSALS = [
    ("another frame of reference", "1.2.3.999", None, "rtstruct_frame_mismatch"),
    ("another series", None, "1.2.3.888", "rtstruct_series_mismatch"),
]


@pytest.mark.parametrize(
    ("name", "frame", "series", "code"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_a_structure_set_of_another_ct_is_refused(
    case: dict[str, Any], name: str, frame: str | None, series: str | None, code: str
) -> None:
    ing = case["ing"]
    ds = tps_rtstruct(case["first"], ing.ct, {"GTV1": case["other"]}, frame=frame, series=series)
    with pytest.raises(IngestError) as refused:
        import_rtstruct(
            ds,
            ing.ct,
            ct_frame_uid=str(case["first"].FrameOfReferenceUID),
            ct_series_uid=ing.ct_series.series_uid,
            roi_pattern=DEFAULT_ROI_PATTERN,
        )
    assert refused.value.code == code


def test_upload_with_its_structure_set_is_prepared_with_ground_truth(
    case: dict[str, Any], tmp_path: Path
) -> None:
    ing = case["ing"]
    upload = tmp_path / "upload"
    shutil.copytree(case["dir"] / "dicom", upload)
    ds = tps_rtstruct(
        case["first"],
        ing.ct,
        {"GTV1": case["ring"], "GTV_met2": case["other"], "PTV": case["other"]},
    )
    ds.save_as(upload / "rtstruct.dcm", enforce_file_format=True)
    meta = prepare_study(
        upload, tmp_path / "prepared", grid="tiny", roi_pattern=DEFAULT_ROI_PATTERN
    )
    assert meta["has_ground_truth"] is True
    report = meta["report"]["ground_truth"]
    assert report["included"] == ["GTV1", "GTV_met2"] and report["ignored"][0]["roi"] == "PTV"
    truth = sitk.GetImageFromArray((case["ring"] | case["other"]).astype(np.uint8))
    truth.CopyInformation(ing.ct)
    sitk.WriteImage(truth, str(tmp_path / "truth.nii.gz"))
    prepare_study(
        case["dir"] / "dicom",
        tmp_path / "nifti",
        grid="tiny",
        ground_truth=tmp_path / "truth.nii.gz",
    )
    from_rtstruct = np.load(tmp_path / "prepared" / "ground_truth.npy")
    assert from_rtstruct.sum() > 0
    # The same mask through a NIfTI file (whose header rounds the geometry to float32).
    from_nifti = np.load(tmp_path / "nifti" / "ground_truth.npy") > 0
    overlap = (
        2
        * (from_nifti & (from_rtstruct > 0)).sum()
        / (from_nifti.sum() + (from_rtstruct > 0).sum())
    )
    assert overlap >= 0.97, overlap
    without = prepare_study(upload, tmp_path / "plain", grid="tiny")
    assert without["has_ground_truth"] is False

"""generate_study: deterministic, realistic DICOM, truth that matches the images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from ml.synthetic import ACQUISITIONS, generate_study


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("syn") / "a"
    return out, generate_study(out, seed=7, grid="tiny", n_lesions=6, mr_orientation="sagittal")


def _all_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_files_and_other_seeds_differ(
    study: tuple[Path, dict], tmp_path: Path
) -> None:
    out, truth = study
    again = generate_study(
        tmp_path / "b", seed=7, grid="tiny", n_lesions=6, mr_orientation="sagittal"
    )
    assert again == truth
    assert _all_bytes(out) == _all_bytes(tmp_path / "b")
    other = generate_study(
        tmp_path / "c", seed=8, grid="tiny", n_lesions=6, mr_orientation="sagittal"
    )
    assert other["lesions"] != truth["lesions"]
    assert other["transform"] != truth["transform"]


def test_layout_and_sizes(study: tuple[Path, dict]) -> None:
    out, truth = study
    ct_files = sorted((out / "dicom" / "ct").glob("*.dcm"))
    mr_files = sorted((out / "dicom" / "mr").glob("*.dcm"))
    assert (out / "ground_truth_ct.nii.gz").exists() and (out / "truth.json").exists()
    assert json.loads((out / "truth.json").read_text()) == truth
    assert 30 <= len(ct_files) <= 50 and 30 <= len(mr_files) <= 50
    ct = pydicom.dcmread(ct_files[0])
    assert (ct.Rows, ct.Columns) == (64, 64)
    assert truth["ct"]["spacing_xyz_mm"] != truth["mr"]["spacing_xyz_mm"]
    # The benchmark sizes live in the paper acquisition.
    paper = ACQUISITIONS["paper"]
    assert (paper.ct_in_plane, paper.ct_slices, paper.mr_in_plane, paper.mr_slices) == (
        512,
        160,
        256,
        176,
    )


def test_headers_look_like_a_scanner_wrote_them(study: tuple[Path, dict]) -> None:
    out, truth = study
    ct = pydicom.dcmread(sorted((out / "dicom" / "ct").glob("*.dcm"))[3])
    mr = pydicom.dcmread(sorted((out / "dicom" / "mr").glob("*.dcm"))[3])
    assert ct.Modality == "CT" and mr.Modality == "MR"
    assert ct.SeriesDescription == "CT HEAD"
    assert mr.SeriesDescription.startswith("T1 MPRAGE +C")
    assert float(ct.RescaleIntercept) == -1024 and float(ct.RescaleSlope) == 1
    assert ct.WindowCenter[0] == 40 and ct.WindowWidth[0] == 80
    assert ct.PatientID == mr.PatientID == truth["dicom"]["patient_id"]
    assert ct.StudyInstanceUID != mr.StudyInstanceUID  # two sessions
    assert ct.FrameOfReferenceUID != mr.FrameOfReferenceUID
    assert ct.SeriesInstanceUID == truth["dicom"]["ct_series_uid"]
    assert [float(v) for v in ct.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert [float(v) for v in mr.ImageOrientationPatient] == [0, 1, 0, 0, 0, -1]  # sagittal
    assert mr.ContrastBolusAgent and mr.MRAcquisitionType == "3D"
    assert len(ct.ImagePositionPatient) == 3 and float(ct.SliceThickness) > 0
    assert ct.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"


def test_lesions_volumes_kinds_and_truth_mask(study: tuple[Path, dict]) -> None:
    out, truth = study
    lesions = truth["lesions"]
    assert truth["n_lesions"] == len(lesions) == 6
    lo, hi = truth["lesion_volume_range_mm3"]
    vols = np.array([les["volume_mm3"] for les in lesions])
    assert np.all((vols >= lo) & (vols <= hi))
    assert vols.max() / vols.min() > 10  # spread over orders of magnitude (log-uniform)
    kinds = {les["kind"] for les in lesions}
    assert {"cortical", "skull_base"} <= kinds
    assert any(les["necrotic"] for les in lesions if les["volume_mm3"] > 1000) or vols.max() <= 1000
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "ground_truth_labels_ct.nii.gz")))
    assert set(np.unique(labels)) == set(range(len(lesions) + 1))
    for les in lesions:
        if les["volume_mm3"] > 2000:  # well resolved on the 4 mm tiny grid
            assert abs(les["volume_mm3_ct"] / les["volume_mm3"] - 1) < 0.2
    binary = sitk.ReadImage(str(out / "ground_truth_ct.nii.gz"))
    assert np.array_equal(sitk.GetArrayFromImage(binary), (labels > 0).astype(np.uint8))


def test_ct_shows_a_head_with_skull_and_lesions_enhance_on_mr(study: tuple[Path, dict]) -> None:
    out, truth = study
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(out / "dicom" / "ct")))
    ct = sitk.GetArrayFromImage(reader.Execute())
    assert ct.min() <= -900 and ct.max() >= 900  # air and bone
    head = ct > -400
    assert 0.15 < head.mean() < 0.7
    brain = (ct > 15) & (ct < 60)
    assert brain.sum() > 0.2 * head.sum()


@pytest.mark.parametrize("n", [0, 1])
def test_few_or_no_lesions(tmp_path: Path, n: int) -> None:
    truth = generate_study(tmp_path / "s", seed=3, grid="tiny", n_lesions=n)
    assert truth["n_lesions"] == n
    gt = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "s" / "ground_truth_ct.nii.gz")))
    assert (gt.max() > 0) == (n > 0)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_study(tmp_path / "x", seed=1, grid="huge")
    with pytest.raises(ValueError):
        generate_study(tmp_path / "y", seed=1, grid="tiny", mr_orientation="coronal")


def test_synth_cli_generates_and_prepares(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.cli.synth import main

    assert main([str(tmp_path / "cases"), "--seeds", "4", "--grid", "tiny", "--n-lesions", "2",
                 "--prepare", str(tmp_path / "prepared")]) == 0  # fmt: skip
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["n_lesions"] == 2 and line["registration_ok"] is True
    assert (tmp_path / "prepared" / "case_00004" / "ground_truth.npy").exists()
    assert (tmp_path / "cases" / "case_00004" / "truth.json").exists()

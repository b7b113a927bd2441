"""prepare_study writes exactly the prepared-study directory of docs/ARCHITECTURE.md."""

from __future__ import annotations

import json
from pathlib import Path

import cc3d
import numpy as np
import pytest
import SimpleITK as sitk

from ml.imaging.errors import IngestError
from ml.imaging.grid import ct_mask_to_model_grid, mask_to_ct_grid
from ml.imaging.pipeline import prepare_study
from ml.presets import grid_preset


@pytest.fixture(scope="module")
def prepared(tiny_study: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("prep") / "case"
    meta = prepare_study(tiny_study / "dicom", out, grid="tiny",
                         ground_truth=tiny_study / "ground_truth_ct.nii.gz")  # fmt: skip
    return out, meta


def test_directory_layout_dtypes_and_shapes(prepared: tuple[Path, dict]) -> None:
    out, meta = prepared
    names = {p.name for p in out.iterdir()}
    assert {"study.json", "model_input.npy", "display_mr.npy", "display_ct.npy",
            "ct_reference.nii.gz", "ground_truth.npy"} <= names  # fmt: skip
    spec = grid_preset("tiny")
    d, h, w = meta["grid"]["shape_dhw"]
    assert (h, w) == (spec.in_plane_size, spec.in_plane_size)
    x = np.load(out / "model_input.npy")
    assert x.dtype == np.float32 and x.shape == (2, d, h, w)
    for name in ("display_mr.npy", "display_ct.npy"):
        arr = np.load(out / name)
        assert arr.dtype == np.int16 and arr.shape == (d, h, w)
    gt = np.load(out / "ground_truth.npy")
    assert gt.dtype == np.uint8 and gt.shape == (d, h, w) and set(np.unique(gt)) <= {0, 1}
    ct_ref = sitk.ReadImage(str(out / "ct_reference.nii.gz"))
    assert list(ct_ref.GetSize()) == meta["ct_geometry"]["size_xyz"]


def test_study_json_has_the_contract_keys(prepared: tuple[Path, dict]) -> None:
    out, _ = prepared
    meta = json.loads((out / "study.json").read_text())
    assert {"preset", "shape_dhw", "spacing_mm", "origin_xyz_mm", "direction"} <= set(meta["grid"])
    assert meta["grid"]["preset"] == "tiny"
    assert meta["grid"]["spacing_mm"] == [4.0, 3.0, 3.0]
    assert {"transform", "quality", "ok", "message"} <= set(meta["registration"])
    assert meta["registration"]["ok"] is True
    assert {"patient_id", "patient_name", "study_uid", "study_description", "ct_series_uid",
            "mr_series_uid", "study_date"} <= set(meta["dicom"])  # fmt: skip
    assert meta["dicom"]["patient_id"] == "LLSYN000011"
    assert {"found", "ignored"} <= set(meta["report"])
    assert {"shape_dhw", "spacing_mm", "origin_xyz_mm", "direction"} <= set(meta["ct_geometry"])


def test_intensities_are_normalised_inside_the_head(prepared: tuple[Path, dict]) -> None:
    out, _ = prepared
    x = np.load(out / "model_input.npy")
    ct = np.load(out / "display_ct.npy")
    head = ct > -400
    for c in range(2):
        assert abs(float(x[c][head].mean())) < 0.15
        assert 0.8 < float(x[c][head].std()) < 1.2
    assert ct.min() >= -1024 and ct.max() > 500  # bone is there in HU
    mr = np.load(out / "display_mr.npy")
    assert mr[head].mean() > 3 * max(float(mr[~head].mean()), 1.0)


def test_ground_truth_keeps_every_lesion(tiny_study: Path, prepared: tuple[Path, dict]) -> None:
    out, _ = prepared
    truth = json.loads((tiny_study / "truth.json").read_text())
    gt = np.load(out / "ground_truth.npy")
    assert cc3d.connected_components(gt, connectivity=26).max() == truth["n_lesions"]
    # And back on the CT it overlaps the original truth well.
    orig = sitk.ReadImage(str(tiny_study / "ground_truth_ct.nii.gz"))
    back = sitk.GetArrayFromImage(mask_to_ct_grid(gt, out)) > 0
    o = sitk.GetArrayFromImage(orig) > 0
    dice = 2 * (back & o).sum() / (back.sum() + o.sum())
    assert dice > 0.75
    np.testing.assert_array_equal(ct_mask_to_model_grid(orig, out), gt)


def test_lesions_are_bright_on_mr_where_the_truth_says(prepared: tuple[Path, dict]) -> None:
    from scipy import ndimage

    out, _ = prepared
    mr = np.load(out / "display_mr.npy").astype(float)
    gt = np.load(out / "ground_truth.npy")
    head = np.load(out / "display_ct.npy") > -400
    brain_level = float(np.median(mr[head & (gt == 0)]))
    labels = cc3d.connected_components(gt, connectivity=26)
    # Registration put each MR lesion (an enhancing rim or nodule) on the CT-grid truth.
    for i in range(1, labels.max() + 1):
        region = ndimage.binary_dilation(labels == i)
        assert mr[region].max() > 1.2 * brain_level, i


def test_failure_leaves_no_half_made_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty_upload"
    empty.mkdir()
    (empty / "a.txt").write_text("no dicom")
    out = tmp_path / "prepared"
    with pytest.raises(IngestError):
        prepare_study(empty, out, grid="tiny")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [empty]


def test_ground_truth_on_another_grid_is_refused(tiny_study: Path, tmp_path: Path) -> None:
    bad = sitk.Image([10, 10, 10], sitk.sitkUInt8)
    sitk.WriteImage(bad, str(tmp_path / "bad.nii.gz"))
    with pytest.raises(IngestError) as info:
        prepare_study(
            tiny_study / "dicom",
            tmp_path / "out",
            grid="tiny",
            ground_truth=tmp_path / "bad.nii.gz",
        )
    assert info.value.code == "bad_ground_truth"
    assert not (tmp_path / "out").exists()


def test_an_existing_directory_is_replaced_whole(tiny_study: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    prepare_study(tiny_study / "dicom", out, grid="tiny")
    assert not (out / "stale.txt").exists()
    assert not (out / "ground_truth.npy").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared"]


def test_ingest_cli_reports_refusals_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.cli.ingest import main

    empty = tmp_path / "up"
    empty.mkdir()
    (empty / "x.txt").write_text("nothing")
    assert main([str(empty), str(tmp_path / "out"), "--grid", "tiny"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["error"]["code"] == "not_dicom"


def test_the_prepared_report_has_one_registration_row(prepared: tuple[Path, dict]) -> None:
    out, meta = prepared
    for report in (meta["report"], json.loads((out / "study.json").read_text())["report"]):
        rows = [r for r in report["rows"] if r["kind"].startswith("registration")]
        assert len(rows) == 1, rows
        assert rows[0]["message"].count("registration") == 1
        assert rows[0]["message"].count("Dice") == 1
        assert sum("registration" in str(w) for w in report["warnings"]) == 1

from __future__ import annotations

import numpy as np
import pytest

from ml.metrics import aggregate, evaluate_case

SPACING = (2.0, 0.5, 1.0)  # anisotropic: 1 mm3 per voxel, but not cubic


def cube(shape, z, y, x, dz, dy, dx):
    m = np.zeros(shape, dtype=np.uint8)
    m[z : z + dz, y : y + dy, x : x + dx] = 1
    return m


def test_voxel_metrics_hand_computed():
    gt = cube((4, 10, 10), 0, 0, 0, 2, 4, 5)  # 40 voxels
    pred = cube((4, 10, 10), 0, 2, 0, 2, 4, 5)  # 40 voxels, 20 overlap
    r = evaluate_case(pred, gt, SPACING)
    assert r["tp_vox"] == 20 and r["fp_vox"] == 20 and r["fn_vox"] == 20
    assert r["dsc"] == pytest.approx(0.5)
    assert r["precision"] == pytest.approx(0.5) and r["recall"] == pytest.approx(0.5)
    assert r["gt_volume_mm3"] == pytest.approx(40.0)
    # IoU = 20 / 60 < 0.5: detected by the paper's rule, not matched one-to-one.
    assert r["n_detected"] == 1 and r["n_matched"] == 0
    assert r["fp_lesions_any_overlap"] == 0 and r["fp_lesions_iou"] == 1
    assert r["lesions"][0]["best_iou"] == pytest.approx(1 / 3)


def test_size_groups_use_mm3_with_anisotropic_spacing():
    spacing = (2.0, 1.0, 1.0)  # 2 mm3 per voxel
    shape = (20, 40, 40)
    gt = cube(shape, 0, 0, 0, 10, 10, 8) | cube(shape, 12, 20, 20, 5, 10, 15)
    # lesion A: 800 vox = 1600 mm3 (large); lesion B: 750 vox = 1500 mm3 (small: <= 1500)
    pred = cube(shape, 0, 0, 0, 10, 10, 4) | cube(shape, 15, 25, 30, 1, 1, 1)
    r = evaluate_case(pred, gt, spacing)
    small, large = r["groups"]["small"], r["groups"]["large"]
    assert large["n_lesions"] == 1 and small["n_lesions"] == 1
    assert large["pixel_recall"] == pytest.approx(0.5) and large["detection_rate"] == 1.0
    # B is hit at (15, 25, 30) only: 1 of 750 voxels
    assert small["pixel_recall"] == pytest.approx(1 / 750) and small["detection_rate"] == 1.0
    # Half of A is an IoU of exactly 0.5: matched; B's single voxel is not.
    assert large["n_matched"] == 1 and small["n_matched"] == 0
    # Same masks with 1 mm3 voxels: both lesions are small.
    r1 = evaluate_case(pred, gt, (1.0, 1.0, 1.0))
    assert r1["groups"]["small"]["n_lesions"] == 2 and r1["groups"]["large"]["n_lesions"] == 0


def test_false_positive_lesions_and_missed_lesion():
    shape = (3, 9, 11)
    gt = cube(shape, 0, 0, 0, 1, 2, 2) | cube(shape, 2, 7, 9, 1, 2, 2)
    pred = cube(shape, 0, 0, 0, 1, 2, 2) | cube(shape, 1, 4, 5, 1, 1, 1)
    r = evaluate_case(pred, gt, SPACING)
    assert r["n_gt_lesions"] == 2 and r["n_pred_lesions"] == 2
    assert r["n_detected"] == 1 and r["n_matched"] == 1
    assert r["fp_lesions_any_overlap"] == 1 and r["fp_lesions_iou"] == 1
    assert [les["detected"] for les in r["lesions"]] == [True, False] or [
        les["detected"] for les in r["lesions"]
    ] == [False, True]


@pytest.mark.parametrize(
    "pred_on,gt_on,dsc,precision,recall",
    [(False, False, 1.0, None, None), (True, False, 0.0, 0.0, None), (False, True, 0.0, None, 0.0)],
)
def test_empty_masks(pred_on, gt_on, dsc, precision, recall):
    shape = (1, 5, 3)
    pred = cube(shape, 0, 1, 1, 1, 2, 1) if pred_on else np.zeros(shape, np.uint8)
    gt = cube(shape, 0, 1, 1, 1, 2, 1) if gt_on else np.zeros(shape, np.uint8)
    r = evaluate_case(pred, gt, SPACING)
    assert r["dsc"] == dsc and r["precision"] == precision and r["recall"] == recall
    assert r["fp_lesions_any_overlap"] == int(pred_on and not gt_on)
    assert r["groups"]["small"]["pixel_recall"] == (0.0 if gt_on else None)


def test_two_predictions_on_one_lesion_match_once():
    shape = (1, 1, 12)
    gt = cube(shape, 0, 0, 0, 1, 1, 10)
    pred = cube(shape, 0, 0, 0, 1, 1, 6) | cube(shape, 0, 0, 7, 1, 1, 3)
    r = evaluate_case(pred, gt, SPACING)
    assert r["n_matched"] == 1 and r["fp_lesions_iou"] == 1 and r["fp_lesions_any_overlap"] == 0


def test_aggregate_pools_lesions_and_skips_undefined():
    shape = (2, 6, 6)
    a = evaluate_case(cube(shape, 0, 0, 0, 1, 2, 2), cube(shape, 0, 0, 0, 1, 2, 2), SPACING)
    b = evaluate_case(np.zeros(shape), cube(shape, 1, 3, 3, 1, 2, 2), SPACING)
    c = evaluate_case(np.zeros(shape), np.zeros(shape), SPACING)
    agg = aggregate([a, b, c])
    assert agg["n_cases"] == 3 and agg["n_gt_lesions"] == 2
    assert agg["dsc"] == pytest.approx((1 + 0 + 1) / 3)
    assert agg["precision"] == pytest.approx(1.0) and agg["precision_n"] == 1
    assert agg["recall"] == pytest.approx(0.5) and agg["recall_n"] == 2
    assert agg["detection_rate"] == pytest.approx(0.5)
    assert agg["groups"]["small"]["pixel_recall"] == pytest.approx(0.5)
    assert agg["groups"]["large"]["pixel_recall"] is None


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        evaluate_case(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)), SPACING)

"""``ml.inference.union``: the union ensemble keeps what either network finds, and its
calibration picks each network's operating point under the FP budget."""

from __future__ import annotations

import numpy as np
import pytest

from ml.inference.rule import LesionRule, ValidationMaps
from ml.inference.union import NetOperatingPoint, UnionRule, calibrate_union
from ml.lesions import label_lesions

SPACING = (2.0, 1.0, 1.0)  # 2 mm3 voxels
SHAPE = (6, 20, 24)


def _blob(prob: np.ndarray, z: int, y: int, x: int, value: float, r: int = 1) -> None:
    prob[max(0, z - r) : z + r + 1, max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1] = value


def _case(unet_blobs, dm_blobs, gt_blobs) -> ValidationMaps:
    """Maps and ground truth from (z, y, x, value) blobs of 3x3x3 voxels (54 mm3)."""
    u = np.zeros(SHAPE, np.float32)
    d = np.zeros(SHAPE, np.float32)
    g = np.zeros(SHAPE, np.uint8)
    for arr, blobs in ((u, unet_blobs), (d, dm_blobs), (g, gt_blobs)):
        for z, y, x, v in blobs:
            _blob(arr, z, y, x, v)
    return ValidationMaps(u, d, g, SPACING)


def _found(labels: np.ndarray, gt: np.ndarray) -> set[int]:
    gl, n = label_lesions(gt > 0, 26)
    return {i for i in range(1, n + 1) if (labels[gl == i] > 0).any()}


# Lesion A (at y=4) seen only by the U-Net, lesion B (at y=15) only by DeepMedic.
A, B = (2, 4, 5), (3, 15, 18)
SPLIT = _case([(*A, 0.9)], [(*B, 0.8)], [(*A, 1), (*B, 1)])


@pytest.mark.parametrize(
    "rule, expect_found",
    [
        (UnionRule(), {1, 2}),
        (UnionRule(deepmedic=NetOperatingPoint(enabled=False)), {1}),
        (UnionRule(unet=NetOperatingPoint(enabled=False)), {2}),
        (UnionRule(NetOperatingPoint(0.5, 0.95), NetOperatingPoint(0.5, 0.5)), {2}),
        (UnionRule(NetOperatingPoint(enabled=False), NetOperatingPoint(enabled=False)), set()),
    ],
)
def test_union_keeps_what_either_network_finds(rule, expect_found):
    labels, n = rule.apply(SPLIT.unet_prob, SPLIT.deepmedic_prob)
    assert _found(labels, SPLIT.gt) == expect_found
    assert n == len(expect_found)


def test_the_mean_loses_what_the_union_keeps():
    # The paper's mean >= 0.5 sees neither lesion (0.45 and 0.4): the union sees both.
    labels, _ = LesionRule().apply(SPLIT.unet_prob, SPLIT.deepmedic_prob)
    assert _found(labels, SPLIT.gt) == set()


@pytest.mark.parametrize("seed", range(5))
def test_union_never_loses_a_lesion_either_network_keeps(seed):
    rng = np.random.default_rng(seed)
    u = rng.random(SHAPE, dtype=np.float32) ** 3
    d = rng.random(SHAPE, dtype=np.float32) ** 3
    gt = (rng.random(SHAPE) > 0.97).astype(np.uint8)
    rule = UnionRule(NetOperatingPoint(0.45, 0.7), NetOperatingPoint(0.4, 0.6))
    union, _ = rule.apply(u, d)
    for net, p, op in (("unet", u, rule.unet), ("deepmedic", d, rule.deepmedic)):
        alone, _ = LesionRule(op.threshold, op.peak_threshold, 1.0).apply(p, p)
        assert _found(alone, gt) <= _found(union, gt), net
        assert np.array_equal(rule.kept(net, p), alone > 0)


def test_calibration_picks_each_network_under_the_budget():
    # Case 1: the U-Net finds A (peak 0.9) and has a FP blob peaking 0.6; DeepMedic
    # finds B (0.8) and has a FP blob peaking 0.55. Case 2: same pattern, shifted.
    cases = [
        _case([(*A, 0.9), (1, 15, 4, 0.6)], [(*B, 0.8), (4, 4, 19, 0.55)], [(*A, 1), (*B, 1)]),
        _case([(*B, 0.95), (1, 4, 19, 0.6)], [(*A, 0.7), (4, 15, 4, 0.55)], [(*A, 1), (*B, 1)]),
    ]
    rule, rec = calibrate_union(cases, max_fp_per_case=0.0, min_lesion_mm3=10.0)
    assert rec["n_lesions"] == 4 and rec["n_detected"] == 4 and rec["within_budget"]
    assert rec["fp_bound_per_case"] == 0.0
    # Peaks above each network's FP blobs and at or below its weakest lesion.
    assert 0.6 < rule.unet.peak_threshold <= 0.9 and rule.unet.enabled
    assert 0.55 < rule.deepmedic.peak_threshold <= 0.7 and rule.deepmedic.enabled
    for c in cases:
        labels, n = rule.apply(c.unet_prob, c.deepmedic_prob)
        assert n == 2 and _found(labels, c.gt) == {1, 2}
    # With one FP allowed per case the same lesions are found; ties prefer fewer FPs.
    _rule, rec1 = calibrate_union(cases, max_fp_per_case=1.0, min_lesion_mm3=10.0)
    assert rec1["n_detected"] == 4 and rec1["fp_bound_per_case"] == 0.0


def test_calibration_switches_off_a_network_that_only_adds_false_positives():
    noisy = [(1, 10, 10, 0.99), (4, 3, 20, 0.97)]
    cases = [_case([(*A, 0.9)], noisy, [(*A, 1)])]
    rule, rec = calibrate_union(cases, max_fp_per_case=0.5, min_lesion_mm3=10.0)
    assert not rule.deepmedic.enabled and rule.unet.enabled
    assert rec["n_detected"] == 1 and rec["n_detected_deepmedic"] == 0


@pytest.mark.parametrize("min_mm3, n_lesions", [(10.0, 2), (60.0, 0)])
def test_calibration_counts_lesions_above_the_size_floor(min_mm3, n_lesions):
    _rule, rec = calibrate_union([SPLIT], min_lesion_mm3=min_mm3)
    assert rec["n_lesions"] == n_lesions


def test_no_cases_gives_both_networks_at_one_half():
    rule, rec = calibrate_union([])
    assert rule == UnionRule() and rec["n_lesions"] == 0


@pytest.mark.parametrize("t, p", [(0.0, 0.5), (0.6, 0.5), (0.5, 1.0)])
def test_bad_operating_points_are_refused(t, p):
    with pytest.raises(ValueError):
        NetOperatingPoint(t, p)


def test_a_component_spread_over_the_head_detects_nothing():
    # DeepMedic's map is 0.6 everywhere: one component touching every lesion. Under
    # the any-overlap rule it would "find" both without a false positive; calibration
    # counts it as a false positive (under 10 % of it is lesion) and cuts it away.
    flood = np.full(SHAPE, 0.6, np.float32)
    case = ValidationMaps(SPLIT.unet_prob, flood, SPLIT.gt, SPACING)
    rule, rec = calibrate_union([case], max_fp_per_case=0.0, min_lesion_mm3=10.0)
    assert not rule.kept("deepmedic", flood).any()
    assert rec["n_detected"] == 1 and rec["fp_bound_per_case"] == 0.0
    _rule, rec1 = calibrate_union([case], max_fp_per_case=1.0, min_lesion_mm3=10.0)
    assert rec1["n_detected"] == 1

"""The lesion rule (hysteresis on the ensemble map) and its calibration."""

from __future__ import annotations

import numpy as np
import pytest

from ml.inference.rule import LesionRule, ValidationMaps, calibrate_rule

SPACING = (2.0, 1.0, 0.5)  # anisotropic: 1 mm3 voxels


def blobs(shape=(7, 9, 11), spec=()) -> np.ndarray:
    """A map with axis-aligned boxes ``(z0, y0, x0, z1, y1, x1, value)`` on zeros."""
    m = np.zeros(shape, dtype=np.float32)
    for z0, y0, x0, z1, y1, x1, v in spec:
        m[z0:z1, y0:y1, x0:x1] = v
    return m


# A: 8 voxels at 0.6 with one voxel at 0.9 (peak 0.9); B: 27 voxels at 0.52.
A = (0, 0, 0, 2, 2, 2, 0.6)
A_PEAK = (0, 0, 0, 1, 1, 1, 0.9)
B = (4, 5, 6, 7, 8, 9, 0.52)


@pytest.mark.parametrize(
    ("rule", "sizes"),
    [
        (LesionRule(0.5, 0.5), [8, 27]),  # the paper's plain threshold: both, by volume
        (LesionRule(0.5, 0.6), [8]),  # B never reaches 0.6
        (LesionRule(0.5, 0.9), [8]),  # the peak counts, not the mean
        (LesionRule(0.5, 0.95), []),
        (LesionRule(0.55, 0.55), [8]),  # B is below the extent threshold itself
        (LesionRule(0.7, 0.7), [1]),  # only A's peak voxel
    ],
)
def test_rule_keeps_components_that_reach_the_peak(rule, sizes):
    m = blobs(spec=(A, A_PEAK, B))
    labels, n = rule.label(m)
    # The same through both networks' maps (equal maps: any weight gives m).
    labels2, n2 = rule.apply(m, m)
    assert n2 == n and np.array_equal(labels2, labels)
    assert n == len(sizes)
    assert [int((labels == i).sum()) for i in range(1, n + 1)] == sizes
    assert labels.dtype == np.int32 and labels.max() == n


def test_rule_on_an_empty_map_and_bad_numbers():
    zeros = np.zeros((3, 4, 5), np.float32)
    labels, n = LesionRule(0.5, 0.8).apply(zeros, zeros)
    assert n == 0 and not labels.any()
    for t, p, w in (
        (0.0, 0.5, 0.5),
        (1.0, 1.0, 0.5),
        (0.5, 0.4, 0.5),
        (0.5, 1.0, 0.5),
        (0.5, 0.5, 1.5),
    ):
        with pytest.raises(ValueError):
            LesionRule(t, p, w)
    assert "peak" in LesionRule(0.5, 0.7).describe()
    assert "peak" not in LesionRule(0.5, 0.5).describe()
    assert (
        "mean" in LesionRule().describe()
        and "0.8 x U-Net" in LesionRule(unet_weight=0.8).describe()
    )


@pytest.mark.parametrize(
    ("w", "unet", "dm", "expect"),
    [
        (0.5, 0.8, 0.2, 0.5),
        (1.0, 0.8, 0.2, 0.8),
        (0.0, 0.8, 0.2, 0.2),
        (0.75, 1.0, 0.0, 0.75),
    ],
)
def test_lesion_map_weights_the_networks(w, unet, dm, expect):
    u = np.full((2, 3, 5), unet, np.float32)
    d = np.full((2, 3, 5), dm, np.float32)
    m = LesionRule(unet_weight=w).lesion_map(u, d)
    assert m.dtype == np.float32 and m.shape == u.shape
    np.testing.assert_allclose(m, expect, atol=1e-6)


def _case(unet_spec, dm_spec, gt_spec, shape=(7, 9, 11)) -> ValidationMaps:
    gt = blobs(shape, [(*box, 1) for box in gt_spec]).astype(np.uint8)
    return ValidationMaps(blobs(shape, unet_spec), blobs(shape, dm_spec), gt, SPACING)


# Lesion: 2x2x2 box = 8 mm3; the networks agree on it (mean 0.9). Distractor
# elsewhere: the U-Net says 1.0 and DeepMedic 0.1 (mean 0.55). 1 mm3 voxels, so
# min_lesion_mm3=5 counts the lesion.
LESION = (0, 0, 0, 2, 2, 2)
TRUE_HIT = (*LESION, 0.9)
DISTRACTOR_U = (4, 5, 6, 6, 7, 8, 1.0)
DISTRACTOR_D = (4, 5, 6, 6, 7, 8, 0.1)


@pytest.mark.parametrize(
    ("max_fp", "expect"),
    [
        # Any FP budget: the distractor is dropped (same detection, higher DSC),
        # with the plain mean, the paper's extent threshold and the lowest peak
        # that drops it (weight 0.6 would need peak 0.65: the tie goes to 0.5).
        (0.0, (0.5, 0.6, 0.5)),
        (1.0, (0.5, 0.6, 0.5)),
    ],
)
def test_calibration_drops_weak_blobs(max_fp, expect):
    cases = [_case([TRUE_HIT, DISTRACTOR_U], [TRUE_HIT, DISTRACTOR_D], [LESION])] * 2
    rule, table = calibrate_rule(cases, max_fp_per_case=max_fp, min_lesion_mm3=5)
    assert (rule.threshold, rule.peak_threshold, rule.unet_weight) == expect
    chosen = [r for r in table if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["n_detected"] == 2 and chosen[0]["n_lesions"] == 2
    paper = next(r for r in table if r["threshold"] == 0.5 and r["peak_threshold"] == 0.5)
    assert paper["fp_lesions_per_case"] == 1.0 and paper["dsc"] < chosen[0]["dsc"]


def test_calibration_trades_a_weak_lesion_for_the_fp_budget():
    # A weak true lesion (mean 0.55) and a distractor (mean 0.58) in each case.
    weak = (4, 5, 6, 6, 7, 8)
    distractor = (0, 6, 0, 2, 8, 2)
    case = _case([(*weak, 0.55), (*distractor, 0.58)], [(*weak, 0.55), (*distractor, 0.58)], [weak])
    # Budget 1: keep both (the lesion is found, 1 FP per case).
    rule, _ = calibrate_rule([case], max_fp_per_case=1.0, min_lesion_mm3=5)
    assert rule.peak_threshold <= 0.55
    # Budget 0: the distractor must go, and the weaker lesion with it.
    rule, table = calibrate_rule([case], max_fp_per_case=0.0, min_lesion_mm3=5)
    assert rule.peak_threshold > 0.58
    assert next(r for r in table if r["chosen"])["n_detected"] == 0


def test_calibration_without_a_rule_in_budget_takes_the_fewest_fp():
    # A distractor at mean 0.99 survives every peak threshold: 1 FP per case at best.
    case = _case(
        [TRUE_HIT, (4, 5, 6, 6, 7, 8, 0.99)], [TRUE_HIT, (4, 5, 6, 6, 7, 8, 0.99)], [LESION]
    )
    rule, table = calibrate_rule([case], max_fp_per_case=0.0, min_lesion_mm3=5)
    chosen = next(r for r in table if r["chosen"])
    assert chosen["fp_lesions_per_case"] == 1.0 and chosen["n_detected"] == 1
    assert calibrate_rule([], max_fp_per_case=1.0) == (LesionRule(0.5, 0.5), [])


def test_calibration_leans_on_the_network_that_learned():
    # DeepMedic says nothing on the lesion and 0.3 on the distractor; the U-Net
    # says 0.9 and 0.7. Mean: lesion 0.45 < distractor 0.5 (inseparable);
    # w 0.6: 0.54 / 0.54 (inseparable); w 0.7: 0.63 / 0.58 -> peak 0.6 separates.
    distractor = (4, 5, 6, 6, 7, 8)
    case = _case([TRUE_HIT, (*distractor, 0.7)], [(*distractor, 0.3)], [LESION])
    rule, table = calibrate_rule([case], max_fp_per_case=0.0, min_lesion_mm3=5)
    assert (rule.unet_weight, rule.threshold, rule.peak_threshold) == (0.7, 0.5, 0.6)
    best = next(r for r in table if r["chosen"])
    assert best["n_detected"] == 1 and best["fp_lesions_per_case"] == 0 and best["dsc"] == 1.0
    labels, n = rule.apply(case.unet_prob, case.deepmedic_prob)
    assert n == 1 and np.array_equal(labels > 0, case.gt > 0)

"""Lesion-wise scores per size group, and agreement with panoptica on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from ml.metrics.lesionwise import (
    lesionwise_case,
    size_group,
    size_group_summary,
    study_stratum,
)

SPACING = (2.0, 1.0, 0.5)  # anisotropic: 1 mm3 per voxel
SHAPE = (12, 40, 40)


def box(mask: np.ndarray, z: int, y: int, x: int, dz: int, dy: int, dx: int) -> np.ndarray:
    mask[z : z + dz, y : y + dy, x : x + dx] = 1
    return mask


def empty() -> np.ndarray:
    return np.zeros(SHAPE, np.uint8)


@pytest.mark.parametrize(
    ("volume", "group"),
    [
        (0.0, "<100"),
        (99.9, "<100"),
        (100.0, "100-500"),
        (499.0, "100-500"),
        (500.0, "500-1500"),
        (1500.0, "500-1500"),
        (1500.5, ">1500"),
        (1e6, ">1500"),
    ],
)
def test_size_group_bounds(volume: float, group: str) -> None:
    assert size_group(volume) == group


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_size_group_refuses_nonsense(bad: float) -> None:
    with pytest.raises(ValueError):
        size_group(bad)


@pytest.mark.parametrize(
    ("lesions", "stratum"),
    [
        ([], "none"),
        ([(0, 0, 0, 2, 5, 5)], "<100"),  # 50 vox = 50 mm3
        ([(0, 0, 0, 4, 10, 10), (6, 20, 20, 2, 10, 10)], "100-500"),  # 400 and 200: smallest 200
        ([(0, 0, 0, 8, 20, 20)], ">1500"),  # 3200
    ],
)
def test_study_stratum_is_the_smallest_lesions_group(lesions: list, stratum: str) -> None:
    gt = empty()
    for b in lesions:
        box(gt, *b)
    assert study_stratum(gt, SPACING) == stratum


def test_per_lesion_records_hand_computed() -> None:
    gt = box(box(empty(), 0, 0, 0, 2, 10, 10), 6, 20, 20, 2, 5, 5)  # 200 mm3 and 50 mm3
    # Lesion A half covered by one prediction (IoU 1/3: detected, not matched); lesion B
    # missed; one false positive of 8 mm3 far away.
    pred = box(box(empty(), 0, 5, 0, 2, 10, 10), 10, 35, 35, 2, 2, 2)
    r = lesionwise_case(pred, gt, SPACING)
    a, b = sorted(r["gt_lesions"], key=lambda les: -les["volume_mm3"])
    assert (a["volume_mm3"], a["group"], a["detected"], a["matched"]) == (
        200.0,
        "100-500",
        True,
        False,
    )
    assert a["dice"] == pytest.approx(2 * 100 / (200 + 200))
    assert (b["group"], b["detected"], b["dice"]) == ("<100", False, 0.0)
    assert r["fp_lesions"] == [{"volume_mm3": 8.0, "group": "<100"}]
    assert r["brats"]["tp"] == 0 and r["brats"]["fn"] == 2 and r["brats"]["fp"] == 2
    assert r["brats"]["lesionwise_dice"] == 0.0


def test_summary_pools_groups_and_fp_per_study() -> None:
    gt1 = box(empty(), 0, 0, 0, 2, 10, 10)  # 200 mm3, predicted exactly
    gt2 = box(empty(), 0, 0, 0, 2, 5, 5)  # 50 mm3, missed, plus one FP of 8 mm3
    pred2 = box(empty(), 10, 35, 35, 2, 2, 2)
    cases = [lesionwise_case(gt1, gt1, SPACING), lesionwise_case(pred2, gt2, SPACING)]
    s = size_group_summary(cases)
    assert s["n_studies"] == 2
    assert s["groups"]["100-500"] == {
        "n_lesions": 1,
        "n_detected": 1,
        "sensitivity": 1.0,
        "fp_lesions": 0,
        "fp_per_study": 0.0,
        "lesion_dice": 1.0,
    }
    small = s["groups"]["<100"]
    assert (small["n_lesions"], small["sensitivity"], small["fp_lesions"]) == (1, 0.0, 1)
    assert small["fp_per_study"] == 0.5
    assert s["groups"][">1500"]["sensitivity"] is None
    assert s["brats"]["tp"] == 1 and s["brats"]["lesionwise_dice"] == pytest.approx(1 / 3)


def _two_lesions_one_fp() -> tuple[np.ndarray, np.ndarray]:
    gt = box(box(empty(), 0, 0, 0, 3, 6, 6), 6, 20, 20, 2, 4, 4)
    pred = box(box(box(empty(), 0, 1, 0, 3, 6, 6), 6, 20, 20, 2, 4, 3), 10, 35, 35, 1, 2, 2)
    return pred, gt


def _masks() -> list[tuple[str, np.ndarray, np.ndarray]]:
    pred, gt = _two_lesions_one_fp()
    half = box(empty(), 0, 0, 0, 2, 10, 10)
    return [
        ("both empty", empty(), empty()),
        ("all missed", empty(), box(empty(), 0, 0, 0, 2, 4, 4)),
        ("only false positives", box(empty(), 0, 0, 0, 2, 4, 4), empty()),
        ("identical", half.copy(), half.copy()),
        ("shifted below IoU 0.5", box(empty(), 0, 6, 0, 2, 10, 10), half.copy()),
        ("two lesions and a false positive", pred, gt),
        (
            "one prediction bridging two lesions",
            box(empty(), 0, 0, 0, 2, 4, 30),
            box(box(empty(), 0, 0, 0, 2, 4, 12), 0, 0, 18, 2, 4, 12),
        ),
    ]


@pytest.mark.parametrize(("name", "pred", "gt"), _masks(), ids=[m[0] for m in _masks()])
def test_agrees_with_panoptica(name: str, pred: np.ndarray, gt: np.ndarray) -> None:
    """Our matched counts, lesion sensitivity and lesion-wise Dice of matched pairs are
    panoptica's (``NaiveThresholdMatching`` at IoU 0.5, connected components)."""
    panoptica = pytest.importorskip(
        "panoptica", reason="panoptica is optional: pip install --no-deps -r requirements-eval.txt"
    )
    from panoptica.metrics import Metric

    panoptica.disable_citation_reminder()

    evaluator = panoptica.Panoptica_Evaluator(
        expected_input=panoptica.InputType.SEMANTIC,
        instance_approximator=panoptica.ConnectedComponentsInstanceApproximator(),
        instance_matcher=panoptica.NaiveThresholdMatching(
            matching_metric=Metric.IOU, matching_threshold=0.5
        ),
        verbose=False,
        log_times=False,
    )
    result = evaluator.evaluate(pred.astype(np.uint8), gt.astype(np.uint8), verbose=False)
    ref = result["ungrouped"] if isinstance(result, dict) else result
    ours = lesionwise_case(pred, gt, SPACING)["brats"]
    assert (ours["tp"], ours["fp"], ours["fn"]) == (ref.tp, ref.fp, ref.fn)
    for key, attr in (("sensitivity", "rec"), ("f1", "rq"), ("sq_dsc", "sq_dsc")):
        theirs = _defined(ref, attr)
        if key == "sq_dsc" and ref.tp == 0 and ref.fp + ref.fn > 0:
            # The one convention that differs: with no matched pair panoptica reports a
            # mean Dice of 0.0 (undefined when both masks are empty), we report None.
            assert (ours[key], theirs) == (None, 0.0)
        elif ours[key] is None:
            assert theirs is None, key
        else:
            assert ours[key] == pytest.approx(theirs, abs=1e-9), key


def _defined(result: object, attr: str) -> float | None:
    """panoptica's value, ``None`` where it is undefined (0/0 raises or gives NaN there)."""
    try:
        value = getattr(result, attr)
    except ZeroDivisionError:
        return None
    return None if value is None or np.isnan(value) else float(value)

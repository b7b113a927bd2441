"""The loop replay: selection strategies, review effort, and a tiny learning curve that rises."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from lesionloop.studies.priority import review_priority
from ml.evaluation.experiment import prepare_synthetic
from ml.evaluation.loop_simulation import (
    SimulationConfig,
    Studies,
    review_effort,
    score,
    select,
    simulate,
    small_sensitivity,
)
from ml.metrics import evaluate_case

SMALL = {"volume_mm3": 30.0, "mean_prob": 0.5, "disagreement": 0.1}  # priority 0.1 + 2 * 1
LARGE = {"volume_mm3": 2000.0, "mean_prob": 0.9, "disagreement": 0.3}  # priority 0.3
PREDICTIONS = {"a": [], "b": [LARGE], "c": [SMALL], "d": [], "e": [LARGE, SMALL]}


@pytest.mark.parametrize(
    ("strategy", "k", "expected"),
    [
        ("priority", 2, ["e", "c"]),  # 2.4, 2.1, then b 0.3
        ("priority", 4, ["e", "c", "b", "a"]),  # ties (0.0) broken by name
        ("priority", 9, ["e", "c", "b", "a", "d"]),  # k larger than the pool
    ],
)
def test_priority_selection_follows_the_platform_score(
    strategy: str, k: int, expected: list[str]
) -> None:
    got = select(strategy, list(PREDICTIONS), PREDICTIONS, k, random.Random(0), review_priority)
    assert got == expected


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_foreground_selection_takes_studies_with_lesions_first(seed: int) -> None:
    got = select(
        "foreground", list(PREDICTIONS), PREDICTIONS, 3, random.Random(seed), review_priority
    )
    assert set(got) == {"b", "c", "e"}
    got = select(
        "foreground", list(PREDICTIONS), PREDICTIONS, 4, random.Random(seed), review_priority
    )
    assert set(got[:3]) == {"b", "c", "e"} and got[3] in {"a", "d"}


def test_random_selection_is_seeded_and_without_repeats() -> None:
    a = select("random", list(PREDICTIONS), PREDICTIONS, 3, random.Random(5), review_priority)
    b = select("random", list(PREDICTIONS), PREDICTIONS, 3, random.Random(5), review_priority)
    assert a == b and len(set(a)) == 3
    with pytest.raises(ValueError, match="unknown strategy"):
        select("oracle", list(PREDICTIONS), PREDICTIONS, 1, random.Random(0), review_priority)


def _mask(shape: tuple[int, int, int], *boxes: tuple[slice, slice, slice]) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    for box in boxes:
        m[box] = True
    return m


SHAPE = (5, 9, 7)
SPACING = (2.0, 1.0, 1.5)  # 3 mm3 per voxel
ONE = (slice(1, 3), slice(1, 3), slice(1, 3))  # 8 voxels, 24 mm3
TWO = (slice(1, 2), slice(6, 8), slice(4, 6))  # 4 voxels, 12 mm3
FAR = (slice(4, 5), slice(0, 1), slice(6, 7))  # 1 voxel


@pytest.mark.parametrize(
    ("pred", "gt", "effort"),
    [
        # nothing to do
        (_mask(SHAPE), _mask(SHAPE), (0, 0, 0, 0)),
        (_mask(SHAPE, ONE), _mask(SHAPE, ONE), (0, 0, 0, 0)),
        # a missed lesion: add it (8 voxels)
        (_mask(SHAPE), _mask(SHAPE, ONE), (1, 0, 8, 0)),
        # a false positive: reject it (1 voxel)
        (_mask(SHAPE, ONE, FAR), _mask(SHAPE, ONE), (0, 1, 0, 1)),
        # found but too small by one slice: 4 voxels to add, no lesion action
        (_mask(SHAPE, (slice(1, 2), slice(1, 3), slice(1, 3))), _mask(SHAPE, ONE), (0, 0, 4, 0)),
        # one found, one missed, one invented
        (_mask(SHAPE, ONE, FAR), _mask(SHAPE, ONE, TWO), (1, 1, 4, 1)),
    ],
)
def test_review_effort(pred: np.ndarray, gt: np.ndarray, effort: tuple[int, ...]) -> None:
    e = review_effort(evaluate_case(pred, gt, SPACING), SPACING)
    assert (e["added"], e["rejected"], e["voxels_added"], e["voxels_removed"]) == effort


def test_small_sensitivity_counts_only_20_to_500_mm3() -> None:
    # ONE is 24 mm3 (small, found), TWO is 12 mm3 (below 20: not counted)
    case = evaluate_case(_mask(SHAPE, ONE), _mask(SHAPE, ONE, TWO), SPACING)
    assert small_sensitivity([case]) == (1, 1)
    empty = evaluate_case(_mask(SHAPE), _mask(SHAPE), SPACING)
    assert small_sensitivity([empty]) == (0, 0)
    assert score([empty])["small_sensitivity"] is None
    assert score([case, empty])["dsc"] == pytest.approx((2 * 8 / (8 + 12) + 1.0) / 2)


@pytest.mark.slow
def test_tiny_replay_runs_the_whole_loop(tmp_path: Path) -> None:
    """Two rounds of the real loop on the tiny grid: studies are reviewed in order, effort
    is recorded for each round's picks, every round is scored on the test set.

    The curve rising is not asserted: at a CI-sized budget (3 epochs of 4 steps a round)
    the tiny-grid model does not learn enough for its test DSC to rise reliably (it went
    0.015 -> 0.005 in one run); docs/ML.md has the benchmark's curves."""
    dirs = prepare_synthetic(tmp_path, "tiny", 900, 8, lambda s: None)
    studies = Studies(pool=dirs[:5], validation=dirs[5:6], test=dirs[6:])
    config = SimulationConfig(initial=1, per_round=2, rounds=2, unet_epochs=3, unet_steps=4)
    rows = simulate(
        config, studies, "priority", 1, tmp_path / "runs", review_priority, log=lambda s: None
    )
    assert [r["n_reviewed"] for r in rows] == [1, 3, 5]
    for row in rows[:-1]:
        e = row["effort"]
        assert set(e) == {"added", "rejected", "voxels_added", "voxels_removed"}
        assert e["added"] + e["rejected"] + e["voxels_added"] + e["voxels_removed"] > 0
    assert rows[-1]["effort"] == {}
    assert all(0.0 <= r["dsc"] <= 1.0 and r["fp_per_study"] >= 0 for r in rows)
    assert (tmp_path / "runs" / "priority" / "seed1" / "round2" / "manifest.json").exists()

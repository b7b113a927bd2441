"""The annotation loop replayed on synthetic studies with known truth.

Each round a simulated reviewer takes ``per_round`` unreviewed studies from a
pool, chosen by a selection strategy; the truth stands in for their
corrections (what they would have had to change is recorded as review effort);
the ensemble is retrained on every reviewed study so far (warm start from the
previous round, a fixed number of epochs, so rounds are comparable whatever
the machine's load) and scored on a fixed test set.

Strategies (``STRATEGIES``):

- ``priority``: the platform's review priority, highest first. The score is
  passed in (``priority_fn``) so that this module stays framework-free; the
  benchmark passes ``lesionloop.studies.priority.review_priority``.
- ``random``: uniform among the unreviewed studies.
- ``foreground``: uniform among the unreviewed studies with at least one
  predicted lesion, then uniform among the rest.

Per round the test scores are: mean DSC, lesion-wise sensitivity of lesions
in ``SMALL_RANGE_MM3`` (20-500 mm3, a lesion counts as found when a predicted
lesion overlaps it: ``ml.metrics.evaluate_case``'s ``detected``), FP lesions
per study (predicted lesions that overlap no true lesion). Review effort of a
reviewed study (prediction of the model current when it was reviewed against
the truth): lesions added (true lesions not found), lesions rejected (FP
lesions), voxels added (false-negative voxels) and removed (false-positive
voxels).
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ml.inference import EnsemblePredictor
from ml.metrics import evaluate_case
from ml.training import EnsembleTrainConfig, train_ensemble
from ml.training.data import read_spacing

STRATEGIES = ("priority", "random", "foreground")
SMALL_RANGE_MM3 = (20.0, 500.0)
PriorityFn = Callable[[Sequence[Mapping[str, Any]]], float]
Log = Callable[[str], None]


@dataclass(frozen=True)
class SimulationConfig:
    """One replay. ``initial`` studies are reviewed before round 1 (the same ones for
    every strategy of a seed); each of ``rounds`` rounds reviews ``per_round`` more."""

    grid: str = "tiny"
    initial: int = 2
    per_round: int = 2
    rounds: int = 3
    unet_epochs: int = 4
    unet_steps: int = 4
    deepmedic_epochs: int = 2
    deepmedic_segments: int = 8
    extra: dict[str, Any] = field(default_factory=dict)  # EnsembleTrainConfig.for_grid overrides

    def training(self, seed: int) -> EnsembleTrainConfig:
        """The fixed-epoch recipe of every round (no time budget: load-independent)."""
        return EnsembleTrainConfig.for_grid(
            self.grid,
            seed=seed,
            device="cpu",
            calibrate=False,
            unet={"epochs": self.unet_epochs, "steps_per_epoch": self.unet_steps},
            deepmedic={
                "epochs": self.deepmedic_epochs,
                "segments_per_epoch": self.deepmedic_segments,
            },
            **self.extra,
        )


@dataclass
class Studies:
    """Prepared-study directories (``model_input.npy``, ``ground_truth.npy``, ``study.json``)."""

    pool: list[Path]
    validation: list[Path]
    test: list[Path]


def small_sensitivity(cases: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(found, total) true lesions with volume in ``SMALL_RANGE_MM3`` over ``cases``."""
    lo, hi = SMALL_RANGE_MM3
    small = [les for c in cases for les in c["lesions"] if lo <= les["volume_mm3"] < hi]
    return sum(bool(les["detected"]) for les in small), len(small)


def review_effort(case: Mapping[str, Any], spacing_mm: Sequence[float]) -> dict[str, float]:
    """What a reviewer changes to turn the prediction into the truth (one study).

    ``case`` is an ``evaluate_case`` result of (prediction, truth). Returns lesions
    ``added`` / ``rejected`` and voxels ``voxels_added`` / ``voxels_removed``.
    """
    del spacing_mm  # voxel counts; volumes are in the case already
    return {
        "added": float(case["n_gt_lesions"] - case["n_detected"]),
        "rejected": float(case["fp_lesions_any_overlap"]),
        "voxels_added": float(case["fn_vox"]),
        "voxels_removed": float(case["fp_vox"]),
    }


def score(cases: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Test-set scores of one round (see the module docstring)."""
    found, total = small_sensitivity(cases)
    return {
        "dsc": float(np.mean([c["dsc"] for c in cases])) if cases else None,
        "small_sensitivity": found / total if total else None,
        "n_small": float(total),
        "fp_per_study": float(np.mean([c["fp_lesions_any_overlap"] for c in cases]))
        if cases
        else None,
    }


def select(
    strategy: str,
    candidates: Sequence[str],
    predictions: Mapping[str, list[dict[str, Any]]],
    k: int,
    rng: random.Random,
    priority_fn: PriorityFn,
) -> list[str]:
    """``k`` study names from ``candidates`` by ``strategy``; ``predictions`` maps a
    name to its predicted lesions (``LesionSummary.to_dict()`` rows)."""
    names = sorted(candidates)
    k = min(k, len(names))
    if strategy == "priority":
        return sorted(names, key=lambda n: (-priority_fn(predictions[n]), n))[:k]
    if strategy == "random":
        return rng.sample(names, k)
    if strategy == "foreground":
        with_fg = [n for n in names if predictions[n]]
        rest = [n for n in names if not predictions[n]]
        rng.shuffle(with_fg)
        rng.shuffle(rest)
        return (with_fg + rest)[:k]
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")


def _predict(model_dir: Path, studies: Sequence[Path]) -> dict[str, tuple[Any, dict[str, Any]]]:
    """Per study: (the prediction's lesions, ``evaluate_case`` against the truth)."""
    predictor = EnsemblePredictor.from_dir(model_dir)
    out = {}
    for study in studies:
        spacing = read_spacing(study)
        pred = predictor.predict(np.load(study / "model_input.npy"), spacing)
        case = evaluate_case(pred.labels > 0, np.load(study / "ground_truth.npy"), spacing)
        out[study.name] = ([les.to_dict() for les in pred.lesions], case)
    return out


def _round_row(
    n_reviewed: int, test: Mapping[str, tuple[Any, dict[str, Any]]], effort: list[dict[str, float]]
) -> dict[str, Any]:
    cases = [case for _, case in test.values()]
    totals = {k: float(sum(e[k] for e in effort)) for k in effort[0]} if effort else {}
    return {"n_reviewed": n_reviewed, **score(cases), "effort": totals}


def simulate(
    config: SimulationConfig,
    studies: Studies,
    strategy: str,
    seed: int,
    work: Path,
    priority_fn: PriorityFn,
    log: Log = print,
) -> list[dict[str, Any]]:
    """Replay the loop for one strategy and seed; one row per round (round 0 first).

    Each row: ``n_reviewed``, the test ``score`` keys, and ``effort``: the review
    effort of the studies reviewed in that round (summed). Model directories go
    to ``work/<strategy>/seed<seed>/round<r>``. ``ValueError`` for an unknown
    strategy or a pool smaller than ``initial``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    if len(studies.pool) < config.initial:
        raise ValueError(f"pool of {len(studies.pool)} studies < initial {config.initial}")
    rng = random.Random(seed)
    by_name = {p.name: p for p in studies.pool}
    order = sorted(by_name)
    random.Random(seed).shuffle(order)  # the same initial set for every strategy
    reviewed = order[: config.initial]
    out_root = work / strategy / f"seed{seed}"
    rows, model_dir = [], None
    for r in range(config.rounds + 1):
        new_dir = out_root / f"round{r}"
        if new_dir.exists():
            shutil.rmtree(new_dir)
        train_ensemble(
            config.training(seed),
            train_dirs=[by_name[n] for n in reviewed],
            val_dirs=studies.validation,
            out_dir=new_dir,
            warm_start_dir=model_dir,
        )
        model_dir, n_trained = new_dir, len(reviewed)
        test = _predict(model_dir, studies.test)
        effort: list[dict[str, float]] = []
        if r < config.rounds:
            rest = [n for n in order if n not in reviewed]
            pool_pred = _predict(model_dir, [by_name[n] for n in rest])
            picked = select(
                strategy,
                rest,
                {n: p[0] for n, p in pool_pred.items()},
                config.per_round,
                rng,
                priority_fn,
            )
            effort = [review_effort(pool_pred[n][1], read_spacing(by_name[n])) for n in picked]
            reviewed = reviewed + picked
        rows.append(_round_row(n_trained, test, effort))
        log(f"{strategy:10s} seed {seed} round {r}: {rows[-1]}")
    return rows

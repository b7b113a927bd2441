"""How long a retraining will take, said before it starts (the "Start retraining" button).

Kept apart from the override checks in ``training.config`` on purpose: this reads the
config a run would get, it does not validate it.

A run is time-limited: the trainer stops gracefully at ``max_minutes`` (the config's
budget, by default 70 % of ``LESIONLOOP_TRAIN_MAX_MINUTES``, or the admin's override),
then validates and calibrates; the supervisor kills it at ``LESIONLOOP_TRAIN_MAX_MINUTES``
whatever happens. So the expected duration is the budget plus the after-training steps,
and the recent runs' actual wall times are shown beside it as evidence.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from . import selectors
from .config import training_config, validate_overrides
from .models import TrainingRun

RECENT_RUNS = 3


def _recent_minutes() -> list[float]:
    """Wall minutes of the last successful runs (newest first)."""
    runs = (
        TrainingRun.objects.filter(
            status=TrainingRun.Status.SUCCEEDED,
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:RECENT_RUNS]
    )
    return [round((end - start).total_seconds() / 60, 1) for start, end in runs]


def training_run_estimate(*, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The duration of a run started now with ``overrides`` (400 on invalid ones).

    ``budget_minutes``: when training stops (``max_minutes``); ``limit_minutes``: the hard
    kill; ``expected_minutes``: the budget plus validation (the recent runs' median when
    there are any, since they include everything); ``recent_minutes``; the grid and the
    number of training-eligible studies.
    """
    clean = validate_overrides(overrides)
    config = training_config(grid=settings.LESIONLOOP_GRID, seed=0, overrides=clean)
    limit = float(settings.LESIONLOOP_TRAIN_MAX_MINUTES)
    budget = config.get("max_minutes")
    budget = min(float(budget), limit) if budget is not None else limit
    recent = _recent_minutes()
    if recent and not clean.get("max_minutes"):
        expected = sorted(recent)[len(recent) // 2]
        basis = f"median of the last {len(recent)} successful runs"
    else:
        # Validation and operating-point calibration after the budget: about a tenth of it.
        expected = min(limit, round(budget * 1.1, 1))
        basis = "the training budget plus about 10 % for validation"
    return {
        "grid": settings.LESIONLOOP_GRID,
        "eligible_studies": len(selectors.training_case_records()),
        "budget_minutes": round(budget, 1),
        "limit_minutes": limit,
        "expected_minutes": expected,
        "recent_minutes": recent,
        "basis": basis,
    }

"""Dramatiq actors of the training app (queue ``gpu-train``)."""

from __future__ import annotations

import dramatiq
from django.conf import settings

# The supervisor enforces LESIONLOOP_TRAIN_MAX_MINUTES on the subprocess; the
# actor's own limit only backstops it (publishing and clean-up need a little more).
TRAIN_TIME_LIMIT_MS = (settings.LESIONLOOP_TRAIN_MAX_MINUTES + 10) * 60 * 1000


@dramatiq.actor(queue_name="gpu-train", time_limit=TRAIN_TIME_LIMIT_MS, max_retries=0)
def training_run_execute_task(run_id: int) -> None:
    """Train one queued run. Idempotent: the run row is claimed atomically, so a
    redelivered message for a claimed or finished run does nothing."""
    from lesionloop.loop.flows import training_run_execute

    training_run_execute(run_id=run_id)


# Scoring one version on a gate set of a few dozen studies: inference only.
GATE_SCORE_TIME_LIMIT_MS = 60 * 60 * 1000


@dramatiq.actor(queue_name="gpu-infer", time_limit=GATE_SCORE_TIME_LIMIT_MS, max_retries=0)
def gate_score_execute_task(score_id: int) -> None:
    """Score a model version on a gate set version. Idempotent: the score row is claimed
    with a conditional update, so a redelivered message for a claimed or finished score
    does nothing."""
    from lesionloop.training.gate import gate_score_execute

    gate_score_execute(score_id=score_id)

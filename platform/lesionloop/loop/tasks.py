"""Actors of the loop: ids in, the flow does the work (imported lazily)."""

from __future__ import annotations

import dramatiq

MINUTE_MS = 60_000


@dramatiq.actor(queue_name="default", time_limit=30 * MINUTE_MS, max_retries=0)
def model_version_activated_task(version_id: int, first_ever: bool) -> None:
    """After an activation: release the studies awaiting a model (first activation only)
    and queue re-pre-segmentation of the unreviewed ones. Idempotent: studies already
    queued or predicted with this version are skipped."""
    from .flows import model_version_activated

    model_version_activated(version_id=version_id, first_ever=first_ever)

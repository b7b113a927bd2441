"""Actors of the studies app: ids in, the loop's flows do the work (imported lazily)."""

from __future__ import annotations

import dramatiq

MINUTE_MS = 60_000


@dramatiq.actor(queue_name="default", time_limit=60 * MINUTE_MS, max_retries=0)
def study_ingest_task(job_id: int) -> None:
    from lesionloop.loop.flows import study_ingest

    study_ingest(job_id=job_id)


@dramatiq.actor(queue_name="gpu-infer", time_limit=60 * MINUTE_MS, max_retries=0)
def study_presegment_task(job_id: int) -> None:
    from lesionloop.loop.flows import study_presegment

    study_presegment(job_id=job_id)

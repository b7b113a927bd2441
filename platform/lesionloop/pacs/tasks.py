"""Actors of the DICOM network: ids in, services do the work (imported lazily)."""

from __future__ import annotations

import dramatiq

MINUTE_MS = 60_000


@dramatiq.actor(queue_name="default", time_limit=60 * MINUTE_MS, max_retries=0)
def pacs_retrieve_task(retrieve_id: int) -> None:
    """C-FIND then C-MOVE to our listener. Idempotent: a taken or finished retrieve is
    skipped; the listener turns what arrives into studies."""
    from .services import retrieve_execute

    retrieve_execute(retrieve_id=retrieve_id)


def _retry_when(retries: int, exc: BaseException) -> bool:
    from .services import SEND_MAX_ATTEMPTS, SendRetryable

    return isinstance(exc, SendRetryable) and retries < SEND_MAX_ATTEMPTS


@dramatiq.actor(
    queue_name="default",
    time_limit=10 * MINUTE_MS,
    max_retries=5,
    min_backoff=15_000,
    max_backoff=10 * MINUTE_MS,
    retry_when=_retry_when,
)
def dicom_send_task(send_id: int) -> None:
    """One attempt of a contour send; a retryable failure raises and Dramatiq backs off.
    Idempotent: a send already sent (or being sent) is skipped."""
    from .services import dicom_send_execute

    dicom_send_execute(send_id=send_id)

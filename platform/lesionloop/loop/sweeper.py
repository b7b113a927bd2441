"""The sweeper: nothing stays stuck after a worker, its child process or the broker dies.

Every job is a row before it is a message (``studies.Job``, ``training.TrainingRun``);
the worker that claims one writes its heartbeat every ``LESIONLOOP_JOB_HEARTBEAT_S``.
Every ``LESIONLOOP_SWEEP_INTERVAL_S`` each worker process serving the ``default``
queue (never the web process) sweeps:

- a ``running`` job whose heartbeat is older than ``LESIONLOOP_JOB_STALE_S`` lost its
  worker (SIGKILL, OOM, a dead child process): it goes back to ``queued`` with a new
  message, or is failed after ``LESIONLOOP_JOB_MAX_ATTEMPTS`` claims;
- a ``queued`` job older than ``LESIONLOOP_JOB_REQUEUE_S`` whose message the broker no
  longer holds (a broker crash, an upload while the broker was down) is sent again;
- PACS retrieves and contour sends left queued longer than the send backoff, or claimed
  by a worker that died, are sent again (``pacs.services.pacs_rows_sweep``), and so are
  gate-set scores (``training.gate.gate_scores_sweep``); their rows are claimed
  atomically, so an extra message is harmless;
- studies still awaiting a model while one is active (the activation's own message was
  lost) are queued for pre-segmentation.

Exactly once: a claim is a conditional update from ``queued``, each claim bumps the
job's ``attempts``, and the transaction that finishes a job first locks the row and
checks it still holds that attempt (``ClaimLost`` otherwise). A redelivered old message
finds the job running or finished and does nothing; an old worker that was only slow
cannot commit over the new attempt. Several sweepers at once are harmless: every
transition is a conditional update on the state the sweeper saw.

``python manage.py sweep_jobs`` runs one sweep by hand.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from dramatiq import Middleware

log = logging.getLogger(__name__)
SWEEP_QUEUE = "default"


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did: jobs (studies) and training runs queued again or failed."""

    jobs_requeued: int = 0
    jobs_resent: int = 0
    jobs_failed: int = 0
    runs_requeued: int = 0
    runs_resent: int = 0
    runs_failed: int = 0
    pacs_resent: int = 0
    studies_released: int = 0
    gate_scores_resent: int = 0

    def __bool__(self) -> bool:
        return any(vars(self).values())


def sweep() -> SweepResult:
    """One sweep over study jobs and training runs (see the module docstring)."""
    from lesionloop.pacs.services import pacs_rows_sweep
    from lesionloop.studies.services import jobs_sweep
    from lesionloop.training.gate import gate_scores_sweep
    from lesionloop.training.services import training_runs_sweep

    jobs = jobs_sweep()
    runs = training_runs_sweep()
    result = SweepResult(
        jobs_requeued=jobs.requeued,
        jobs_resent=jobs.resent,
        jobs_failed=jobs.failed,
        runs_requeued=runs.requeued,
        runs_resent=runs.resent,
        runs_failed=runs.failed,
        pacs_resent=pacs_rows_sweep(),
        gate_scores_resent=gate_scores_sweep(),
        studies_released=_release_awaiting_studies(),
    )
    if result:
        log.info("sweep: %s", result)
    return result


def _release_awaiting_studies() -> int:
    """Queue the studies awaiting a model when one has no pre-segmentation job open: with
    an active model that means the activation's own message was lost."""
    from lesionloop.studies.models import Job, Study
    from lesionloop.studies.services import studies_awaiting_model_enqueue

    open_jobs = Job.objects.filter(
        kind=Job.Kind.PRESEGMENT, state__in=[Job.State.QUEUED, Job.State.RUNNING]
    ).values("study_id")
    waiting = Study.objects.filter(status=Study.Status.AWAITING_MODEL).exclude(pk__in=open_jobs)
    return studies_awaiting_model_enqueue() if waiting.exists() else 0


class SweeperMiddleware(Middleware):
    """Starts the sweeper thread in each worker process that serves ``default``."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        interval = settings.LESIONLOOP_SWEEP_INTERVAL_S
        queues = getattr(worker, "consumer_whitelist", None)
        if interval <= 0 or (queues and SWEEP_QUEUE not in queues):
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(float(interval),), name="job-sweeper", daemon=True
        )
        self._thread.start()
        log.info("job sweeper started (every %s s)", interval)

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self._stop.set()

    def _loop(self, interval: float) -> None:
        from django.db import connection

        # A first sweep soon after boot: a restarted worker recovers at once; the jitter
        # spreads several workers' sweeps apart.
        delay = min(interval, 2.0) * random.uniform(0.5, 1.0)
        while not self._stop.wait(delay):
            try:
                sweep()
            except Exception:  # a database or broker outage: try again next time
                log.exception("job sweep failed")
            finally:
                connection.close()
            delay = interval * random.uniform(0.8, 1.2)

"""Follow a training run from a management command, printing its progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.db import close_old_connections, connection

from .models import TrainingRun


def describe(run: TrainingRun) -> str:
    parts = [f"run {run.pk} {run.status}", f"{run.progress * 100:5.1f}%"]
    if run.stage:
        parts.append(run.stage)
    if run.epochs:
        parts.append(f"epoch {run.epoch}/{run.epochs}")
    if run.steps:
        parts.append(f"step {run.step}/{run.steps}")
    if run.losses:
        parts.append(f"loss {run.losses[-1]['loss']:.4f}")
    if run.val and run.val.get("dsc") is not None:
        parts.append(f"val dsc {run.val['dsc']:.3f}")
    return "  ".join(parts)


def follow(
    run_id: int,
    write: Callable[[str], None],
    *,
    inline: bool,
    execute: Callable[..., object] | None = None,
    poll_s: float = 2.0,
) -> TrainingRun:
    """Print the run's progress until it finishes. With ``inline`` the run is executed
    here in a thread (no broker: nothing else would run it) by ``execute(run_id=...)``
    (the caller passes ``lesionloop.loop.flows.training_run_execute``, so that a first
    model activated by itself is followed by the studies; default: the training service)."""
    worker = None
    if inline:

        def target() -> None:
            from .services import training_run_execute

            try:
                (execute or training_run_execute)(run_id=run_id)
            finally:
                connection.close()

        worker = threading.Thread(target=target, name=f"training-run-{run_id}", daemon=True)
        worker.start()
    last = ""
    while True:
        close_old_connections()
        run = TrainingRun.objects.select_related("model_version").get(pk=run_id)
        line = describe(run)
        if line != last:
            write(line)
            last = line
        if not run.is_open and (worker is None or not worker.is_alive()):
            return run
        time.sleep(poll_s)

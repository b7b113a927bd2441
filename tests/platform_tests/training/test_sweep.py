"""Training runs are never stuck: a run whose worker died is trained again, once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from lesionloop.audit.models import AuditEvent
from lesionloop.core import queueing
from lesionloop.loop.sweeper import sweep
from lesionloop.registry.models import ModelVersion
from lesionloop.training import services
from lesionloop.training.models import TrainingRun


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    out: list[tuple[str, tuple[Any, ...]]] = []

    def fake_send(actor: Any, *args: Any, delay_ms: int | None = None) -> str:
        out.append((actor.actor_name, args))
        return f"msg-{len(out)}"

    monkeypatch.setattr(queueing, "send", fake_send)
    monkeypatch.setattr(queueing, "message_live", lambda queue, message_id: False)
    return out


def _run(status: str, *, beat_s: int | None, attempts: int, age_s: int = 3600) -> TrainingRun:
    now = timezone.now()
    version = None
    if status == "running":
        version = ModelVersion.objects.create(name=f"v{attempts}-{beat_s}", status="training")
    run = TrainingRun.objects.create(status=status, model_version=version, attempts=attempts)
    TrainingRun.objects.filter(pk=run.pk).update(
        created_at=now - timedelta(seconds=age_s),
        started_at=now - timedelta(seconds=age_s) if status == "running" else None,
        heartbeat_at=None if beat_s is None else now - timedelta(seconds=beat_s),
        enqueued_at=now - timedelta(seconds=age_s),
    )
    run.refresh_from_db()
    return run


# (case, status, heartbeat age s, attempts, status after, message sent, version after)
CASES = [
    ("running, fresh heartbeat", "running", 5, 1, "running", False, "training"),
    ("running, stale heartbeat", "running", 120, 1, "queued", True, "failed"),
    ("running, stale, last attempt", "running", 120, 3, "failed", False, "failed"),
    ("queued, message lost", "queued", None, 0, "queued", True, None),
    ("succeeded", "succeeded", 3600, 1, "succeeded", False, None),
    ("cancelled", "cancelled", 3600, 1, "cancelled", False, None),
]


@pytest.mark.parametrize(
    ("status", "beat_s", "attempts", "after", "resent", "version_after"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_sweep(
    cast: Any,
    sent: list[Any],
    django_capture_on_commit_callbacks: Any,
    status: str,
    beat_s: int | None,
    attempts: int,
    after: str,
    resent: bool,
    version_after: str | None,
) -> None:
    run = _run(status, beat_s=beat_s, attempts=attempts)
    version = run.model_version
    with django_capture_on_commit_callbacks(execute=True):
        sweep()
    run.refresh_from_db()
    assert run.status == after
    assert sent == ([("training_run_execute_task", (run.pk,))] if resent else [])
    if version is not None:
        version.refresh_from_db()
        assert version.status == version_after
    if status == "running" and after == "queued":
        assert run.model_version is None and run.losses == [] and "attempt 1" in run.message
        assert AuditEvent.objects.filter(event_type="training_requeued").count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        sweep()
    assert len(sent) == (1 if resent else 0)


def test_a_requeued_run_trains_once_and_the_old_attempt_publishes_nothing(
    cast: Any,
    cases: Any,
    fake_runner: Any,
    sent: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Attempt 1 looks dead just before it commits its version (the sweeper requeues
    the run); its commit is refused (``ClaimLost``); attempt 2 trains and publishes the one version."""
    cases(6)
    fake_runner("ok")
    run = services.training_run_start(started_by=cast.admin)
    real_metrics = services._metrics_with_baseline

    def metrics_after_losing_the_claim(*args: Any, **kwargs: Any) -> Any:
        TrainingRun.objects.filter(pk=run.pk).update(
            heartbeat_at=timezone.now() - timedelta(hours=1)
        )
        with django_capture_on_commit_callbacks(execute=True):
            assert sweep().runs_requeued == 1
        return real_metrics(*args, **kwargs)

    monkeypatch.setattr(services, "_metrics_with_baseline", metrics_after_losing_the_claim)
    services.training_run_execute(run_id=run.pk)  # attempt 1
    run.refresh_from_db()
    assert run.status == "queued" and run.attempts == 1
    assert ModelVersion.objects.get().status == "failed"
    monkeypatch.setattr(services, "_metrics_with_baseline", real_metrics)
    services.training_run_execute(run_id=run.pk)  # attempt 2, from the sweeper's message
    run.refresh_from_db()
    assert run.status == "succeeded" and run.attempts == 2, run.message
    statuses = sorted(ModelVersion.objects.values_list("status", flat=True))
    assert statuses == ["active", "failed"]
    assert AuditEvent.objects.filter(event_type="training_finished").count() == 1
    assert sent == [("training_run_execute_task", (run.pk,))]  # the requeue's message

"""Jobs are never stuck: heartbeats, the sweeper, claims that hold exactly once.

Table-driven over what a sweep finds (queued without a message, queued with a live
one, running with a fresh or stale heartbeat, done, failed) and over the race every
requeue invites: the old message redelivered and the old worker waking up.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from lesionloop.audit.models import AuditEvent
from lesionloop.core import queueing
from lesionloop.core.exceptions import ClaimLost
from lesionloop.loop import flows
from lesionloop.loop.sweeper import sweep
from lesionloop.studies import services, tasks
from lesionloop.studies.models import Job, Prediction, Study

from .helpers import make_study, model_version
from .test_presegment import StubPredictor

pytestmark = pytest.mark.django_db

AGO = {"now": 0, "5s": 5, "2min": 120, "1h": 3600}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """Messages handed to the broker (a fake send that records and returns an id)."""
    out: list[tuple[str, tuple[Any, ...]]] = []

    def fake_send(actor: Any, *args: Any, delay_ms: int | None = None) -> str:
        out.append((actor.actor_name, args))
        return f"msg-{len(out)}"

    monkeypatch.setattr(queueing, "send", fake_send)
    return out


def _job(state: str, *, created: str, enqueued: str | None, beat: str | None, **kw: Any) -> Job:
    now = timezone.now()
    job = Job.objects.create(study=make_study(status="processing"), kind="presegment", state=state)
    Job.objects.filter(pk=job.pk).update(
        created_at=now - timedelta(seconds=AGO[created]),
        enqueued_at=None if enqueued is None else now - timedelta(seconds=AGO[enqueued]),
        heartbeat_at=None if beat is None else now - timedelta(seconds=AGO[beat]),
        claimed_at=None if beat is None else now - timedelta(seconds=AGO[beat]),
        **kw,
    )
    job.refresh_from_db()
    return job


# (case, state, created, enqueued, heartbeat, attempts, message live?, state after, sent?)
CASES = [
    ("queued, message lost", "queued", "2min", "2min", None, 0, False, "queued", True),
    ("queued, never sent (broker down)", "queued", "2min", None, None, 0, False, "queued", True),
    ("queued, message still held", "queued", "2min", "2min", None, 0, True, "queued", False),
    ("queued just now", "queued", "5s", "5s", None, 0, False, "queued", False),
    ("running, fresh heartbeat", "running", "2min", "2min", "5s", 1, True, "running", False),
    ("running, stale heartbeat", "running", "1h", "1h", "2min", 1, True, "queued", True),
    ("running, stale, last attempt", "running", "1h", "1h", "2min", 3, True, "failed", False),
    ("succeeded", "succeeded", "1h", "1h", "1h", 1, False, "succeeded", False),
    ("failed", "failed", "1h", "1h", "1h", 1, False, "failed", False),
]


@pytest.mark.parametrize(
    ("state", "created", "enqueued", "beat", "attempts", "live", "after", "resent"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_sweep(
    sent: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
    state: str,
    created: str,
    enqueued: str | None,
    beat: str | None,
    attempts: int,
    live: bool,
    after: str,
    resent: bool,
) -> None:
    monkeypatch.setattr(queueing, "message_live", lambda queue, message_id: live)
    job = _job(state, created=created, enqueued=enqueued, beat=beat, attempts=attempts)
    with django_capture_on_commit_callbacks(execute=True):
        sweep()
    job.refresh_from_db()
    assert job.state == after
    assert sent == ([("study_presegment_task", (job.pk,))] if resent else [])
    if resent:
        assert job.message_id == "msg-1" and job.attempts == attempts  # the claim counts
    if after == "failed" and state == "running":
        study = Study.objects.get(pk=job.study_id)
        assert "stopped 3 times" in job.message
        assert study.status in ("failed", "ready")  # a study with a mask stays reviewable
    with django_capture_on_commit_callbacks(execute=True):
        sweep()  # a second sweeper right after: nothing more
    assert len(sent) == (1 if resent else 0)


def test_a_stale_study_without_a_mask_fails_after_the_last_attempt(sent: list[Any]) -> None:
    job = _job("running", created="1h", enqueued="1h", beat="2min", attempts=3)
    Study.objects.filter(pk=job.study_id).update(revision_number=0)
    result = sweep()
    assert result.jobs_failed == 1
    study = Study.objects.get(pk=job.study_id)
    assert study.status == "failed" and "LESIONLOOP_JOB_MAX_ATTEMPTS" in study.status_reason
    assert AuditEvent.objects.filter(event_type="job_failed", study=study).count() == 1


@pytest.mark.parametrize("redeliveries", [1, 2, 3])
def test_redelivered_old_messages_never_claim_twice(
    sent: list[Any], django_capture_on_commit_callbacks: Any, redeliveries: int
) -> None:
    """Worker A dies holding the job; the sweeper requeues it; the old message comes
    back (once or more) alongside the new one: exactly one more claim."""
    job = Job.objects.create(study=make_study(), kind="presegment")
    first = services.job_claim(job_id=job.pk)
    assert first is not None and first.attempts == 1
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep().jobs_requeued == 1
    claims = [services.job_claim(job_id=job.pk) for _ in range(redeliveries + 1)]
    taken = [c for c in claims if c is not None]
    assert len(taken) == 1 and taken[0].attempts == 2


def test_the_old_worker_cannot_finish_a_requeued_job(sent: list[Any]) -> None:
    job = Job.objects.create(study=make_study(), kind="presegment")
    old = services.job_claim(job_id=job.pk)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    sweep()
    new = services.job_claim(job_id=job.pk)
    assert old is not None and new is not None
    assert services.job_finish(job=old, ok=True) is False
    with pytest.raises(ClaimLost):
        services.job_hold(old)
    assert services.job_finish(job=new, ok=True) is True
    job.refresh_from_db()
    assert job.state == "succeeded" and job.attempts == 2


def test_a_zombie_presegmentation_stores_nothing(
    monkeypatch: pytest.MonkeyPatch, sent: list[Any]
) -> None:
    """Worker A is paused past the stale threshold mid-prediction; the job is requeued
    and run by worker B; when A wakes up, its prediction is not stored."""
    stub = StubPredictor()
    monkeypatch.setattr(services, "_predictor", lambda mv: stub)
    study = make_study(mv=model_version("v8", "retired"))
    mv = model_version("v9", "active")
    job = Job.objects.create(study=study, kind="presegment", model_version=mv)
    real_predict = services._predict

    def predict_then_lose_the_claim(**kw: Any) -> Any:
        out = real_predict(**kw)
        Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
        sweep()  # A looked dead: requeued
        monkeypatch.setattr(services, "_predict", real_predict)
        flows.study_presegment(job_id=job.pk)  # worker B runs the new attempt
        return out

    monkeypatch.setattr(services, "_predict", predict_then_lose_the_claim)
    flows.study_presegment(job_id=job.pk)  # worker A
    job.refresh_from_db()
    assert job.state == "succeeded" and job.attempts == 2
    assert Prediction.objects.filter(study=study, model_version=mv).count() == 1
    assert AuditEvent.objects.filter(event_type="prediction_created", study=study).count() == 1
    assert stub.calls == 2
    study.refresh_from_db()
    assert study.model_version == mv and study.revision_number == 2  # one new mask, not two


def test_the_heartbeat_thread_keeps_a_running_job_fresh(settings: Any) -> None:
    import time

    settings.LESIONLOOP_JOB_HEARTBEAT_S = 1
    beats: list[float] = []
    job = Job.objects.create(study=make_study(), kind="ingest")
    claimed = services.job_claim(job_id=job.pk)
    assert claimed is not None
    hb = services.job_heartbeat(claimed)
    hb._beat = lambda: beats.append(time.monotonic()) or True  # count, without a 2nd DB session
    with hb:
        time.sleep(2.5)
    assert len(beats) == 2 and not hb.lost


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_writes_and_notices_a_lost_claim(settings: Any) -> None:
    import time

    settings.LESIONLOOP_JOB_HEARTBEAT_S = 1
    job = Job.objects.create(study=make_study(), kind="ingest")
    claimed = services.job_claim(job_id=job.pk)
    assert claimed is not None
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    with services.job_heartbeat(claimed) as hb:
        time.sleep(1.5)
        job.refresh_from_db()
        assert timezone.now() - job.heartbeat_at < timedelta(seconds=2)
        Job.objects.filter(pk=job.pk).update(state="queued")  # the sweeper took it
        time.sleep(1.5)
    assert hb.lost


def test_upload_with_the_broker_down_queues_durably(
    api: Any, cast: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    """202 and a queued job with no message; the sweeper sends it once the broker is back."""
    import redis

    def broker_down(*args: Any, **kwargs: Any) -> Any:
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(tasks.study_ingest_task, "send", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = api(cast.clinician).post(
            "/api/studies/",
            {"files": [SimpleUploadedFile("a.dcm", b"x" * 200)]},
            format="multipart",
        )
    assert response.status_code == 202, response.content
    job = Job.objects.get(study_id=response.json()["id"])
    assert job.state == "queued" and job.message_id == "" and job.enqueued_at is not None
    assert sweep().jobs_resent == 0  # too young: the first send may still be under way
    Job.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timedelta(minutes=5),
        enqueued_at=timezone.now() - timedelta(minutes=5),
    )
    monkeypatch.undo()
    assert sweep().jobs_resent == 1
    job.refresh_from_db()
    assert job.message_id and job.state == "queued"


def test_sweep_jobs_command_reports(sent: list[Any]) -> None:
    from io import StringIO

    from django.core.management import call_command

    _job("queued", created="2min", enqueued=None, beat=None)
    out = StringIO()
    call_command("sweep_jobs", stdout=out)
    assert "jobs_resent: 1" in out.getvalue()

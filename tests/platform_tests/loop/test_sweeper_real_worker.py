"""The sweeper on the real parts: Dramatiq worker processes, Redis, PostgreSQL.

A worker is SIGKILLed (its whole process group: dramatiq's main process and its
child) while it runs a job; another is started, as a supervisor would. The study
must finish exactly once within the recovery bound. The thresholds are short here
(heartbeat 1 s, stale after 6 s, sweep every 2 s); production defaults are in
``settings/base.py``.

The test process itself uses the StubBroker, so the jobs it creates have no message
in Redis: the workers' sweeper must also send those (the "message lost" path).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.worker_helpers import ROOT, Processes, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REDIS_URL = os.environ.get("LESIONLOOP_RECOVERY_REDIS_URL", "redis://127.0.0.1:6379/11")
RECOVERY_BOUND_S = 60.0
FAST_RECOVERY = {
    "LESIONLOOP_JOB_HEARTBEAT_S": "1",
    "LESIONLOOP_JOB_STALE_S": "6",
    "LESIONLOOP_JOB_REQUEUE_S": "5",
    "LESIONLOOP_SWEEP_INTERVAL_S": "2",
}


def worker_env(storage: Path, redis_url: str) -> dict[str, str]:
    """The environment of a worker subprocess on the test database and ``redis_url``."""
    from django.db import connection

    db = connection.settings_dict
    auth = f"{db['USER']}:{db['PASSWORD']}" if db.get("PASSWORD") else db["USER"]
    return {
        **os.environ,
        **FAST_RECOVERY,
        "DJANGO_SETTINGS_MODULE": "lesionloop.settings.test",
        "DATABASE_URL": f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "LESIONLOOP_E2E_BROKER_URL": redis_url,
        "LESIONLOOP_STORAGE": str(storage),
        "LESIONLOOP_GRID": "tiny",
        "LESIONLOOP_DEVICE": "cpu",
        "LESIONLOOP_RETRAIN_AFTER_APPROVALS": "0",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "platform"), str(ROOT)]),
    }


def start_worker(processes: Processes, name: str, queue: str) -> Any:
    return processes.start(
        name,
        ["manage.py", "rundramatiq", "--queues", queue, "--processes", "1", "--threads", "1"],
    )


def kill_group(proc: Any) -> None:
    """SIGKILL dramatiq's main process and its worker child at once."""
    os.killpg(proc.popen.pid, signal.SIGKILL)
    proc.popen.wait(timeout=10)


@pytest.fixture
def recovery_env(transactional_db: Any, settings: Any, tmp_path: Path) -> Any:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc}")
    client.flushdb()
    storage = tmp_path / "storage"
    storage.mkdir(exist_ok=True)
    settings.STORAGE_ROOT = storage
    processes = Processes(env=worker_env(storage, REDIS_URL), logs=tmp_path)
    try:
        yield processes, storage
    finally:
        processes.stop()
        client.flushdb()


def _events(study_id: int, event_type: str) -> int:
    from lesionloop.audit.models import AuditEvent

    return AuditEvent.objects.filter(study_id=study_id, event_type=event_type).count()


def _kill_while_running(processes: Processes, victim: Any, job_id: int) -> float:
    """Wait until the job is running on ``victim``, SIGKILL it; the time of the kill."""
    from lesionloop.studies.models import Job

    wait_for(
        f"job {job_id} running",
        lambda: Job.objects.filter(pk=job_id, state="running").exists(),
        timeout_s=120,
        processes=processes,
        interval_s=0.1,
    )
    time.sleep(0.5)  # well inside the work (ingest: a few seconds; inference: torch import)
    processes.procs.remove(victim)
    kill_group(victim)
    return time.monotonic()


@pytest.mark.parametrize("kind", ["ingest", "presegment"])
def test_a_killed_worker_job_finishes_once_on_the_next_worker(
    recovery_env: Any, cast: Any, tmp_path: Path, kind: str
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from lesionloop.loop.flows import study_import
    from lesionloop.studies.models import Job, Study
    from lesionloop.studies.services import study_upload
    from ml.synthetic import generate_study
    from tests.platform_tests.studies.helpers import model_version, tiny_model_dir

    processes, storage = recovery_env
    case = tmp_path / "case"
    generate_study(case, seed=5, grid="tiny")
    queue = "default" if kind == "ingest" else "gpu-infer"
    if kind == "presegment":
        tiny_model_dir(storage / "models" / "v1")
        model_version("v1", "active", weights_dir="models/v1")
        start_worker(processes, "sweeper", "default")  # serves default: runs the sweeper
        study = study_import(source=case / "dicom")
    else:
        files = [
            SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(case.rglob("dicom/**/*.dcm"))
        ]
        study = study_upload(files=files, user=cast.clinician)
    job = Job.objects.get(study=study, kind=kind)
    first = start_worker(processes, "worker-a", queue)
    killed_at = _kill_while_running(processes, first, job.pk)
    start_worker(processes, "worker-b", queue)  # the supervisor's restart
    done_status = "awaiting_model" if kind == "ingest" else "ready"

    def finished() -> bool:
        s = Study.objects.get(pk=study.pk)
        assert s.status != "failed", s.status_reason
        return s.status == done_status

    wait_for("the study after the kill", finished, timeout_s=120, processes=processes)
    recovered_s = time.monotonic() - killed_at
    job.refresh_from_db()
    assert job.state == "succeeded" and job.attempts == 2, (job.state, job.attempts)
    done_event = "ingest_done" if kind == "ingest" else "prediction_created"
    assert _events(study.pk, done_event) == 1
    assert _events(study.pk, "job_requeued") == 1
    assert recovered_s < RECOVERY_BOUND_S, recovered_s

"""Scale-out on one machine: two workers on `default` and two on `gpu-infer` share the work.

Real Dramatiq worker processes (1 process x 1 thread each, prefetch 1 on gpu-infer, as
docker compose runs them with ``--scale``), a real Redis broker, PostgreSQL, one shared
storage folder and a web server; six studies are uploaded over HTTP. Every study must be
ingested once and pre-segmented once (one job of each kind, one attempt, one audit event,
one prediction), each queue's two workers must both have worked, and the number of
messages the workers received must equal the number of jobs (no duplicate delivery).
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.worker_helpers import ROOT, Api, Processes, free_port, wait_for, zip_folder

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REDIS_DB_URL = os.environ.get("LESIONLOOP_E2E_SCALE_REDIS_URL", "redis://127.0.0.1:6379/12")
STUDIES = 6
WORKERS = {
    "default-1": "default",
    "default-2": "default",
    "infer-1": "gpu-infer",
    "infer-2": "gpu-infer",
}
RECEIVED = re.compile(r"Received message (study_ingest_task|study_presegment_task)\((\d+)\)")


def _env(storage: Path) -> dict[str, str]:
    from django.db import connection

    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "lesionloop.settings.test",
        "DATABASE_URL": f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "LESIONLOOP_E2E_BROKER_URL": REDIS_DB_URL,
        "LESIONLOOP_STORAGE": str(storage),
        "LESIONLOOP_GRID": "tiny",
        "LESIONLOOP_DEVICE": "cpu",
        "LESIONLOOP_RETRAIN_AFTER_APPROVALS": "0",
        "LOG_LEVEL": "DEBUG",  # dramatiq logs each received message at DEBUG
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "platform"), str(ROOT)]),
    }


@pytest.fixture
def cluster(transactional_db: Any, settings: Any, tmp_path: Path) -> Any:
    import redis

    try:
        redis.Redis.from_url(REDIS_DB_URL, socket_connect_timeout=2).flushdb()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        pytest.fail(f"Redis at {REDIS_DB_URL} is not reachable: {exc}")
    storage = tmp_path / "storage"
    storage.mkdir()
    settings.STORAGE_ROOT = storage
    port = free_port()
    env = _env(storage)
    processes = Processes(env={**env, "dramatiq_queue_prefetch": "1"}, logs=tmp_path)
    try:
        for name, queue in WORKERS.items():
            processes.start(
                name,
                [
                    "manage.py",
                    "rundramatiq",
                    "--queues",
                    queue,
                    "--processes",
                    "1",
                    "--threads",
                    "1",
                    "-v",
                    "2",
                ],
            )
        processes.start(
            "web", ["manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"]
        )
        yield processes, f"http://127.0.0.1:{port}/api", storage
    finally:
        processes.stop()
        redis.Redis.from_url(REDIS_DB_URL).flushdb()


def _received(processes: Processes) -> dict[str, Counter[str]]:
    """Per worker: how many messages of each actor it received (from its DEBUG log)."""
    out = {}
    for proc in processes.procs:
        if proc.name in WORKERS:
            text = proc.log.read_text(errors="replace")
            out[proc.name] = Counter(actor for actor, _ in RECEIVED.findall(text))
    return out


def test_two_workers_per_queue_share_the_work_and_process_each_study_once(
    cast: Any, cluster: Any, tmp_path: Path
) -> None:
    from rest_framework.authtoken.models import Token

    from lesionloop.audit.models import AuditEvent
    from lesionloop.studies.models import Job, Prediction, Study
    from ml.synthetic import generate_study
    from tests.platform_tests.studies.helpers import model_version, tiny_model_dir

    processes, base, storage = cluster
    tiny_model_dir(storage / "models" / "v1")
    mv = model_version("v1", "active", weights_dir="models/v1")
    api = Api(base, Token.objects.get_or_create(user=cast.clinician)[0].key)
    zips = []
    for seed in range(STUDIES):
        folder = tmp_path / "sources" / f"seed-{seed}"
        generate_study(folder, seed=300 + seed, grid="tiny")
        zips.append(zip_folder(folder / "dicom"))

    def ready() -> bool:
        logs = [p.log.read_text(errors="replace") for p in processes.procs if p.name in WORKERS]
        return all("ready for action" in text for text in logs) and _ping(api)

    wait_for("four workers and the web server", ready, timeout_s=120, processes=processes)
    t0 = time.monotonic()
    ids = [
        api.upload("/studies/", [("files", f"s{i}.zip", data)])["id"] for i, data in enumerate(zips)
    ]

    def all_done() -> bool:
        statuses = set(Study.objects.filter(pk__in=ids).values_list("status", flat=True))
        assert "failed" not in statuses, list(
            Study.objects.filter(status="failed").values_list("status_reason", flat=True)
        )
        return statuses == {"ready"}

    wait_for(f"{STUDIES} studies ready", all_done, timeout_s=420, processes=processes)
    elapsed = time.monotonic() - t0

    jobs = Job.objects.filter(study_id__in=ids)
    assert Counter(jobs.values_list("kind", flat=True)) == {
        "ingest": STUDIES,
        "presegment": STUDIES,
    }
    assert set(jobs.values_list("state", "attempts")) == {("succeeded", 1)}
    for event in ("ingest_started", "prediction_created"):
        per_study = Counter(
            AuditEvent.objects.filter(study_id__in=ids, event_type=event).values_list(
                "study_id", flat=True
            )
        )
        assert per_study == dict.fromkeys(ids, 1), event
    assert Counter(
        Prediction.objects.filter(study_id__in=ids, model_version=mv).values_list(
            "study_id", flat=True
        )
    ) == dict.fromkeys(ids, 1)
    assert len({s.revisions.count() for s in Study.objects.filter(pk__in=ids)}) == 1

    received = _received(processes)
    for actor, prefix in (("study_ingest_task", "default"), ("study_presegment_task", "infer")):
        per_worker = {name: c[actor] for name, c in received.items() if name.startswith(prefix)}
        assert sum(per_worker.values()) == STUDIES, (actor, per_worker)  # each message once
        assert all(n >= 1 for n in per_worker.values()), (actor, per_worker, processes.logs_text())
    print(f"\n{STUDIES} studies in {elapsed:.1f} s; received per worker: {received}")


def _ping(api: Api) -> bool:
    try:
        api.get("/models/")
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False

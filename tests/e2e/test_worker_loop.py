"""The whole annotation loop with real worker processes, Redis and PostgreSQL.

A web server and a Dramatiq worker run as subprocesses (the test settings with
``LESIONLOOP_E2E_BROKER_URL``: a real Redis broker on a dedicated database)
against the test database; the test drives them over HTTP with tokens:

bootstrap (ground-truth imports + first training -> v1 active) -> upload two
studies -> pre-segmentation by v1 -> review (lease, decision, mask edit) ->
approval -> retraining -> candidate v2 -> promotion -> re-pre-segmentation of
the unreviewed study by v2 -> lineage and the audit trail.

Tiny grid, lite networks, tiny epochs: a few minutes on a shared CPU.
"""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.worker_helpers import (
    ROOT,
    Api,
    Processes,
    free_port,
    gzip_bytes,
    wait_for,
    zip_folder,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REDIS_DB_URL = os.environ.get("LESIONLOOP_E2E_REDIS_URL", "redis://127.0.0.1:6379/13")
FAST_TRAINING = {
    "unet": {"epochs": 1, "steps_per_epoch": 2},
    "deepmedic": {"epochs": 1, "segments_per_epoch": 8, "batch_size": 4},
}
TIMINGS: dict[str, float] = {}


def _services_reachable() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_DB_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"Redis at {REDIS_DB_URL} is not reachable: {exc}"
    return None


@pytest.fixture
def loop_env(transactional_db: Any, settings: Any, tmp_path: Path) -> Any:
    """Redis flushed, storage shared, then a web server and a worker as subprocesses."""
    reason = _services_reachable()
    if reason:
        pytest.fail(reason)
    import redis
    from django.db import connection

    redis.Redis.from_url(REDIS_DB_URL).flushdb()
    db = connection.settings_dict
    # Each test gets its own storage: model folders are never overwritten, and the next
    # test's first version is named v1 again.
    storage = tmp_path / "storage"
    storage.mkdir()
    settings.STORAGE_ROOT = storage
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "lesionloop.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "LESIONLOOP_E2E_BROKER_URL": REDIS_DB_URL,
        "LESIONLOOP_STORAGE": str(storage),
        "LESIONLOOP_GRID": "tiny",
        "LESIONLOOP_DEVICE": "cpu",
        "LESIONLOOP_RETRAIN_AFTER_APPROVALS": "0",
        "LESIONLOOP_TRAIN_MAX_MINUTES": "5",
        "OMP_NUM_THREADS": "2",
        "PYTHONUNBUFFERED": "1",
        # rundramatiq execs the dramatiq CLI, which does not get manage.py's sys.path.
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "platform"), str(ROOT), os.environ.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep),
    }
    if db.get("PASSWORD"):
        env["DATABASE_URL"] = env["DATABASE_URL"].replace(
            f"{db['USER']}@", f"{db['USER']}:{db['PASSWORD']}@"
        )
    processes = Processes(env=env, logs=tmp_path)
    try:
        processes.start(
            "worker",
            ["manage.py", "rundramatiq", "--processes", "1", "--threads", "2", "--skip-logging"],
        )
        processes.start(
            "web", ["manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"]
        )
        yield processes, f"http://127.0.0.1:{port}/api", storage
    finally:
        processes.stop()
        redis.Redis.from_url(REDIS_DB_URL).flushdb()


def _token(user: Any) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key


def _generate(root: Path, seed: int) -> Path:
    from ml.synthetic import generate_study

    folder = root / f"seed-{seed}"
    generate_study(folder, seed=seed, grid="tiny")
    return folder


def _train(api: Api, processes: Processes, label: str) -> dict[str, Any]:
    t0 = time.monotonic()
    run = api.post("/training-runs/", {"hyperparameters": FAST_TRAINING})
    assert run["status"] == "queued"
    seen_stages: set[str] = set()

    def finished() -> dict[str, Any] | None:
        current = api.get(f"/training-runs/{run['id']}/")
        seen_stages.add(current["stage"])
        return current if current["status"] not in ("queued", "running") else None

    done = wait_for(f"training run {run['id']}", finished, timeout_s=240, processes=processes)
    TIMINGS[label] = time.monotonic() - t0
    assert done["status"] == "succeeded", done["message"]
    assert done["progress"] == 1.0 and done["losses"], done
    assert {"unet", "deepmedic"} & seen_stages or done["losses"], seen_stages  # progress was live
    assert {loss["stage"] for loss in done["losses"]} == {"unet", "deepmedic"}
    return done


def test_upload_review_approve_retrain_promote_represegment(
    cast: Any, loop_env: Any, tmp_path: Path
) -> None:
    from lesionloop.review.services import study_ground_truth_apply
    from lesionloop.studies.services import study_import

    processes, base, storage = loop_env
    admin = Api(base, _token(cast.admin))
    clinician = Api(base, _token(cast.clinician))
    auditor = Api(base, _token(cast.auditor))
    t_start = time.monotonic()

    # --- bootstrap: three approved ground-truth studies, then the first training -------
    sources = tmp_path / "sources"
    for seed in (11, 12, 13):
        folder = _generate(sources, seed)
        study_import(
            source=folder / "dicom",
            ground_truth=folder / "ground_truth_ct.nii.gz",
            approved_by=cast.admin,
            ground_truth_apply=study_ground_truth_apply,
            description=f"ground truth {seed}",
        )
    wait_for("the web server", lambda: _ping(admin), timeout_s=60, processes=processes)
    assert admin.get("/models/")["count"] == 0
    first = _train(admin, processes, "bootstrap training")
    v1 = first["model_version"]
    assert admin.get(f"/models/{v1['id']}/")["status"] == "active"  # the first goes live

    # --- upload two studies: both are pre-segmented by v1 -------------------------------
    uploads = []
    for seed in (21, 22):
        folder = _generate(sources, seed)
        body = clinician.upload(
            "/studies/", [("files", f"study-{seed}.zip", zip_folder(folder / "dicom"))]
        )
        assert body["status"] == "received"
        uploads.append(body["id"])
    reviewed, untouched = uploads

    def ready_with(study_id: int, version_id: int) -> dict[str, Any] | None:
        s = clinician.get(f"/studies/{study_id}/")
        assert s["status"] != "failed", s
        ok = s["status"] == "ready" and (s["model_version"] or {}).get("id") == version_id
        return s if ok else None

    t0 = time.monotonic()
    for sid in uploads:
        wait_for(
            f"study {sid} pre-segmented by v1",
            lambda sid=sid: ready_with(sid, v1["id"]),
            timeout_s=180,
            processes=processes,
        )
    TIMINGS["ingest + pre-segmentation of 2 uploads"] = time.monotonic() - t0

    # --- review: lease, a decision, a mask edit, approval --------------------------------
    study = clinician.get(f"/studies/{reviewed}/")
    clinician.post(f"/studies/{reviewed}/lease/")
    lesions = clinician.get(f"/studies/{reviewed}/lesions/")
    if lesions:
        clinician.request(
            "PATCH",
            f"/studies/{reviewed}/lesions/{lesions[0]['id']}/",
            json_body={"decision": "accepted"},
        )
    _, raw, headers = clinician.request("GET", f"/studies/{reviewed}/mask/")
    d, h, w = study["grid"]["shape_dhw"]
    raw = gzip.decompress(raw) if headers.get("Content-Encoding") == "gzip" else raw
    mask = np.frombuffer(raw, dtype="<u2").reshape(d, h, w).copy()
    keep = lesions[0]["label"] if lesions else 0
    mask[(mask != keep)] = 0  # erase the other proposals (rejected) ...
    new_label = int(mask.max()) + 1
    mask[d // 2 - 1 : d // 2 + 1, h // 2 - 3 : h // 2 + 3, w // 2 - 3 : w // 2 + 3] = (
        new_label  # ... add one
    )
    clinician.request(
        "PUT",
        f"/studies/{reviewed}/mask/",
        data=gzip_bytes(mask.astype("<u2").tobytes()),
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Encoding": "gzip",
            "If-Match": headers["ETag"],
            "X-Reason": "e2e: kept one, added one",
        },
    )
    pending = [
        les
        for les in clinician.get(f"/studies/{reviewed}/lesions/")
        if les["decision"] == "pending"
    ]
    for les in pending:
        clinician.request(
            "PATCH", f"/studies/{reviewed}/lesions/{les['id']}/", json_body={"decision": "accepted"}
        )
    approved = clinician.post(f"/studies/{reviewed}/approve/", {"training_eligible": True})
    assert approved["status"] == "approved"

    # --- retraining on the approved studies -> candidate v2 ------------------------------
    second = _train(admin, processes, "retraining")
    v2 = admin.get(f"/models/{second['model_version']['id']}/")
    assert v2["status"] == "candidate" and v2["parent"]["id"] == v1["id"]
    assert reviewed in v2["train_study_ids"] + v2["val_study_ids"]
    assert set(v2["train_study_ids"]).isdisjoint(v2["val_study_ids"])
    assert v2["hyperparameters"]["warm_start"] == v1["name"]
    assert {w["file"] for w in v2["weights"]} == {"unet.pt", "deepmedic.pt", "manifest.json"}
    assert (storage / "models" / v2["name"] / "unet.pt").is_file()
    assert "baseline" in v2["metrics"]  # v1 rescored on the same validation studies
    # One training at a time holds across processes too.
    third = admin.post("/training-runs/", {"hyperparameters": FAST_TRAINING})
    refused = admin.request("POST", "/training-runs/", json_body={}, expect=409)[1]
    assert refused["code"] == "training_running"
    admin.post(f"/training-runs/{third['id']}/cancel/")

    # --- promotion (with an override when the tiny model scores worse) ---------------------
    status, body, _ = admin.request(
        "POST", f"/models/{v2['id']}/promote/", json_body={}, expect=(200, 409)
    )
    overridden = status == 409
    if overridden:
        assert body["code"] == "worse_than_active"
        admin.post(
            f"/models/{v2['id']}/promote/", {"override_reason": "e2e: tiny model, promote anyway"}
        )
    assert admin.get(f"/models/{v2['id']}/")["status"] == "active"
    assert admin.get(f"/models/{v1['id']}/")["status"] == "retired"

    # --- the unreviewed study is pre-segmented again, by v2; the approved one is not -------
    t0 = time.monotonic()
    wait_for(
        "re-pre-segmentation by v2",
        lambda: ready_with(untouched, v2["id"]),
        timeout_s=120,
        processes=processes,
    )
    TIMINGS["re-pre-segmentation"] = time.monotonic() - t0
    assert clinician.get(f"/studies/{reviewed}/")["status"] == "approved"

    # --- lineage and the audit trail --------------------------------------------------------
    lineage_v2 = auditor.get(f"/models/{v2['id']}/lineage/")
    assert [p["id"] for p in lineage_v2["parents"]] == [v1["id"]]
    assert {s["id"] for s in lineage_v2["presegmented"]} == {untouched}
    assert reviewed in {s["id"] for s in lineage_v2["trained_on"] + lineage_v2["validated_on"]}
    lineage_v1 = auditor.get(f"/models/{v1['id']}/lineage/")
    assert {s["id"] for s in lineage_v1["presegmented"]} == {reviewed, untouched}  # kept

    def types(query: str) -> list[str]:
        found, path = [], f"/audit/?{query}"
        while path:
            page = auditor.get(path)
            found += [e["event_type"] for e in page["results"]]
            path = page["next"].split("/api", 1)[1] if page.get("next") else None
        return found

    v2_events = types(f"model_version={v2['id']}")
    for expected in (
        "training_started",
        "training_finished",
        "model_promoted",
        "prediction_created",
    ):
        assert expected in v2_events, v2_events
    if overridden:
        assert "model_promotion_override" in v2_events
    assert "model_promoted" in types(f"model_version={v1['id']}")
    study_events = types(f"study={reviewed}")
    for expected in ("study_uploaded", "prediction_created", "mask_revision", "study_approved"):
        assert expected in study_events, study_events
    all_events = types("event_type=training_cancelled")
    assert all_events == ["training_cancelled"]

    TIMINGS["whole loop"] = time.monotonic() - t_start
    print("\nworker loop timings (s): " + ", ".join(f"{k}={v:.1f}" for k, v in TIMINGS.items()))


def _ping(api: Api) -> bool:
    try:
        api.get("/models/")
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False

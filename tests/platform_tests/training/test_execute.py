"""Executing a training run with a fake runner: publish, fail, cancel, timeout, idempotence."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lesionloop.audit.models import AuditEvent
from lesionloop.registry.models import GateScore, GateSetVersion, ModelVersion
from lesionloop.training import selectors, services
from lesionloop.training.models import TrainingRun


def _events() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("event_type", flat=True))


def spec_cases(spec_copy: Path, key: str) -> list[dict]:
    return json.loads(spec_copy.read_text())[key]


def _leftovers(storage: Path) -> list[Path]:
    attempts = storage / "models" / ".attempts"
    return list(attempts.iterdir()) if attempts.exists() else []


def test_success_publishes_a_candidate_and_activates_the_first(
    cast: Any, cases: Any, fake_runner: Any, settings: Any
) -> None:
    cases(6)
    spec_copy = fake_runner("ok")
    run = services.training_run_start(started_by=cast.admin)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.message
    assert run.progress == 1.0
    assert [(x["stage"], x["epoch"]) for x in run.losses] == [
        ("unet", 1),
        ("unet", 2),
        ("deepmedic", 1),
        ("deepmedic", 2),
    ]
    assert run.losses[0]["loss"] == pytest.approx(0.5)  # the validate event's epoch loss
    version = run.model_version
    version.refresh_from_db()
    # No active version before: the first candidate goes live by itself.
    assert version.status == ModelVersion.Status.ACTIVE
    assert version.created_by == cast.admin
    assert version.weights_dir == f"models/{version.name}"
    folder = Path(settings.STORAGE_ROOT) / version.weights_dir
    assert sorted(p.name for p in folder.iterdir()) == [
        "deepmedic.pt",
        "evaluation.json",
        "manifest.json",
        "unet.pt",
    ]
    for entry in version.weights:
        assert hashlib.sha256((folder / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    assert {w["file"] for w in version.weights} == {"unet.pt", "deepmedic.pt", "manifest.json"}
    assert set(version.train_study_ids).isdisjoint(version.val_study_ids)
    # The third study of the one stratum went to the gate set: neither trained nor
    # calibrated on, in the spec neither.
    gate = GateSetVersion.objects.get()
    assert gate.study_ids == [3]
    assert sorted(version.train_study_ids + version.val_study_ids + gate.study_ids) == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]
    staged = {
        c["study_id"]
        for c in [*spec_cases(spec_copy, "train_cases"), *spec_cases(spec_copy, "val_cases")]
    }
    assert 3 not in staged
    # The new version is queued for scoring on the gate set.
    assert GateScore.objects.filter(model_version=version, gate_set=gate).exists()
    assert version.metrics["dsc"] == 0.7
    assert version.code_version and "ml:" in version.code_version
    hp = version.hyperparameters
    assert hp["unet"]["loss"] == "vol_dice_br" and hp["warm_start"] is None
    spec = json.loads(spec_copy.read_text())
    assert {c["study_id"] for c in spec["val_cases"]} == set(version.val_study_ids)
    assert not _leftovers(Path(settings.STORAGE_ROOT))
    assert _events() == [
        "training_requested",
        "gate_set_grown",
        "training_started",
        "training_finished",
        "model_promoted",
    ]


@pytest.mark.parametrize("same_val_studies", [True, False])
def test_second_run_warm_starts_from_active_and_stays_candidate(
    cast: Any, cases: Any, fake_runner: Any, same_val_studies: bool
) -> None:
    cases(5)
    fake_runner("ok")
    first = services.training_run_start(started_by=cast.admin)
    services.training_run_execute(run_id=first.pk)
    first.refresh_from_db()
    v1 = ModelVersion.objects.get(pk=first.model_version_id)
    assert first.message == f"{v1.name} is active (the first model, activated automatically)."
    if not same_val_studies:
        ModelVersion.objects.filter(pk=v1.pk).update(val_study_ids=[])
    spec_copy = fake_runner("ok", baseline={"dsc": 0.6, "small_sensitivity": 0.5})
    second = services.training_run_start(started_by=cast.admin)
    services.training_run_execute(run_id=second.pk)
    second.refresh_from_db()
    v1.refresh_from_db()
    v2 = second.model_version
    assert v2.status == "candidate" and v1.status == "active"
    assert v2.parent == v1
    assert v2.hyperparameters["warm_start"] == v1.name
    spec = json.loads(spec_copy.read_text())
    assert spec["warm_start_dir"].endswith(f"models/{v1.name}")
    if same_val_studies:
        # Same validation studies: the parent's stored scores are the baseline, no rescoring.
        assert spec["baseline_dir"] is None
        assert v2.metrics["baseline"] == {"dsc": 0.7, "small_sensitivity": 0.6, "version": v1.name}
    else:
        assert spec["baseline_dir"] == spec["warm_start_dir"]
        assert v2.metrics["baseline"] == {"dsc": 0.6, "small_sensitivity": 0.5, "version": v1.name}
    # The validation split is sticky: the same studies validate every version.
    assert v2.val_study_ids == sorted(selectors.validation_study_ids())


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("crash", "exited with code 1"),
        ("badhash", "does not match the manifest"),
    ],
)
def test_failure_leaves_a_failed_version_and_no_files(
    cast: Any, cases: Any, fake_runner: Any, settings: Any, mode: str, message: str
) -> None:
    cases(4)
    fake_runner(mode)
    run = services.training_run_start(started_by=cast.admin)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed"
    assert message in run.message
    version = run.model_version
    assert version.status == "failed" and message in version.status_reason
    assert not (Path(settings.STORAGE_ROOT) / "models" / version.name).exists()
    assert not _leftovers(Path(settings.STORAGE_ROOT))
    assert _events()[-1] == "training_failed"
    # A failed run frees the trainer.
    services.training_run_start(started_by=cast.admin)


def test_timeout_kills_the_process(cast: Any, cases: Any, fake_runner: Any, settings: Any) -> None:
    cases(4)
    fake_runner("hang")
    settings.LESIONLOOP_TRAIN_MAX_SECONDS = 2
    run = services.training_run_start(started_by=cast.admin)
    t0 = time.monotonic()
    services.training_run_execute(run_id=run.pk)
    assert time.monotonic() - t0 < 30
    run.refresh_from_db()
    assert run.status == "failed" and "Stopped after" in run.message
    assert run.model_version.status == "failed"
    assert not _leftovers(Path(settings.STORAGE_ROOT))


@pytest.mark.django_db(transaction=True)
def test_cancel_kills_the_running_process(
    cast: Any, cases: Any, fake_runner: Any, settings: Any
) -> None:
    cases(4)
    fake_runner("hang")
    run = services.training_run_start(started_by=cast.admin)

    def cancel_when_running() -> None:
        from django.db import connection

        for _ in range(200):
            if TrainingRun.objects.filter(pk=run.pk, status="running", pid__isnull=False).exists():
                services.training_run_cancel(run_id=run.pk, user=cast.admin)
                break
            time.sleep(0.1)
        connection.close()

    thread = threading.Thread(target=cancel_when_running)
    thread.start()
    t0 = time.monotonic()
    services.training_run_execute(run_id=run.pk)
    thread.join()
    assert time.monotonic() - t0 < 60
    run.refresh_from_db()
    assert run.status == "cancelled" and run.message == "Cancelled by ada."
    # the versions table must say cancelled, not failed
    assert run.model_version.status == "cancelled"
    assert not _leftovers(Path(settings.STORAGE_ROOT))
    event = AuditEvent.objects.filter(event_type="training_cancelled").get()
    assert event.actor == cast.admin


def test_execute_is_idempotent(cast: Any, cases: Any, fake_runner: Any) -> None:
    cases(4)
    fake_runner("ok")
    run = services.training_run_start(started_by=cast.admin)
    services.training_run_execute(run_id=run.pk)
    services.training_run_execute(run_id=run.pk)  # a redelivered message
    assert ModelVersion.objects.count() == 1


def test_waits_for_cases_then_gives_up(
    cast: Any, cases: Any, fake_runner: Any, monkeypatch: Any
) -> None:
    cases(1)
    sent: list[tuple[int, int | None]] = []
    monkeypatch.setattr(
        services, "training_run_enqueue", lambda rid, delay_ms=None: sent.append((rid, delay_ms))
    )
    run = services.training_run_start(started_by=cast.admin)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "queued" and "Waiting for approved" in run.message
    assert sent == [(run.pk, services.WAIT_RETRY_MS)]
    monkeypatch.setattr(services, "WAIT_FOR_CASES_S", 0)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "Gave up" in run.message
    assert ModelVersion.objects.count() == 0


def test_a_redelivered_message_leaves_a_running_run_to_the_sweeper(cast: Any, cases: Any) -> None:
    """Even with a stale heartbeat: only the sweeper takes a run back (test_sweep.py)."""
    from datetime import timedelta

    from django.utils import timezone

    run = TrainingRun.objects.create(
        status="running", heartbeat_at=timezone.now() - timedelta(hours=1), attempts=1
    )
    assert services.training_run_execute(run_id=run.pk) is None
    run.refresh_from_db()
    assert run.status == "running" and run.attempts == 1
    assert ModelVersion.objects.count() == 0


@pytest.mark.parametrize(
    ("status", "after", "requeued"), [("running", "failed", False), ("queued", "queued", True)]
)
def test_recover_on_embedded_start(
    cast: Any, monkeypatch: Any, status: str, after: str, requeued: bool
) -> None:
    run = TrainingRun.objects.create(status=status)
    sent: list[int] = []
    monkeypatch.setattr(
        services, "training_run_enqueue", lambda rid, delay_ms=None: sent.append(rid)
    )
    services.training_runs_recover()
    run.refresh_from_db()
    assert run.status == after
    assert sent == ([run.pk] if requeued else [])


def test_a_stale_running_run_does_not_block_a_new_start(cast: Any, monkeypatch: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    monkeypatch.setattr(services, "training_run_enqueue", lambda rid, delay_ms=None: None)
    stale = TrainingRun.objects.create(
        status="running", heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    fresh = services.training_run_start(started_by=cast.admin)
    stale.refresh_from_db()
    assert stale.status == "failed" and fresh.status == "queued"

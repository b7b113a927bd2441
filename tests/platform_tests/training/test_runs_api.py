"""/api/training-runs/: roles matrix, one training at a time, cancel, autostart."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction

from lesionloop.audit.models import AuditEvent
from lesionloop.training import services
from lesionloop.training.models import TrainingRun

ROLES = ("clinician", "admin", "auditor", "nobody", None)


@pytest.fixture(autouse=True)
def no_enqueue(monkeypatch: Any) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr(
        services, "training_run_enqueue", lambda rid, delay_ms=None: sent.append(rid)
    )
    return sent


@pytest.mark.parametrize(
    ("role", "list_status", "start_status"),
    [
        ("clinician", 200, 403),
        ("admin", 200, 202),
        ("auditor", 200, 403),
        ("nobody", 403, 403),
        (None, 403, 403),  # anonymous: session auth answers 403
    ],
)
def test_roles_matrix(
    cast: Any, api: Any, role: str | None, list_status: int, start_status: int
) -> None:
    run = TrainingRun.objects.create(status="succeeded")
    client = api(getattr(cast, role) if role else None)
    assert client.get("/api/training-runs/").status_code == list_status
    assert client.get(f"/api/training-runs/{run.pk}/").status_code == list_status
    assert client.post("/api/training-runs/", {}, format="json").status_code == start_status
    open_run = TrainingRun.objects.filter(status="queued").first() or TrainingRun.objects.create()
    expected_cancel = 202 if role == "admin" else start_status
    assert client.post(f"/api/training-runs/{open_run.pk}/cancel/").status_code == expected_cancel


def test_start_then_second_start_is_409(
    cast: Any, api: Any, no_enqueue: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    client = api(cast.admin)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/training-runs/", {}, format="json")
    assert first.status_code == 202
    body = first.json()
    assert body["status"] == "queued" and body["started_by"] == "ada" and body["progress"] == 0
    assert set(body) >= {
        "id",
        "status",
        "stage",
        "epoch",
        "epochs",
        "step",
        "steps",
        "progress",
        "losses",
        "val",
        "model_version",
        "message",
        "started_by",
        "created_at",
        "finished_at",
    }
    assert no_enqueue == [body["id"]]
    second = client.post("/api/training-runs/", {}, format="json")
    assert second.status_code == 409
    assert second.json()["code"] == "training_running"
    assert second.json()["training_run"] == body["id"]
    assert "already in progress" in second.json()["detail"]


def test_database_refuses_a_second_open_run(cast: Any) -> None:
    TrainingRun.objects.create(status="running")
    for status in ("queued", "running"):
        with pytest.raises(IntegrityError), transaction.atomic():
            TrainingRun.objects.create(status=status)
    TrainingRun.objects.create(status="failed")  # closed runs are unconstrained


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"hyperparameters": {"unet": {"epochs": 3}, "seed": 7}}, 202, None),
        ({"hyperparameters": {"unet": {"loss": "mse"}}}, 400, "invalid_hyperparameter"),
        ({"hyperparameters": {"device": "cuda"}}, 400, "invalid_hyperparameter"),
        ({"hyperparameters": {"unet": {"slab_depth": 4}}}, 400, "invalid_hyperparameter"),
        ({"hyperparameters": {"unet": {"epochs": 2.5}}}, 400, "invalid_hyperparameter"),
        ({"hyperparameters": {"unet": {"lr": "0.1"}}}, 400, "invalid_hyperparameter"),
        ({"hyperparameters": {"deepmedic": {"batch_size": True}}}, 400, "invalid_hyperparameter"),
        ({"hyperparameters": {"unet": 3}}, 400, "invalid_hyperparameter"),
        ({"hyperparameters": [1]}, 400, "invalid"),
        # misplaced or unknown body fields never start a default run
        ({"epochs": 500}, 400, "unknown_field"),
        ({"hyperparameters": {}, "priority": "high"}, 400, "unknown_field"),
    ],
)
def test_start_validates_overrides(
    cast: Any, api: Any, body: dict, status: int, code: str | None
) -> None:
    response = api(cast.admin).post("/api/training-runs/", body, format="json")
    assert response.status_code == status, response.json()
    if code:
        assert response.json()["code"] == code


# (section, field, lowest allowed, highest allowed): one below and one above each bound
# is refused; the bound itself is accepted (max_minutes is capped by the settings' hard
# limit, LESIONLOOP_TRAIN_MAX_MINUTES, set to 60 in the test).
BOUNDS = [
    ("", "seed", 0, 2**31 - 1),
    ("", "max_minutes", 0.5, 60),
    ("unet", "epochs", 1, 1000),
    ("unet", "steps_per_epoch", 1, 10_000),
    ("unet", "batch_size", 1, 16),
    ("unet", "lr", 1e-6, 0.1),
    ("deepmedic", "epochs", 1, 500),
    ("deepmedic", "segments_per_epoch", 1, 10_000),
    ("deepmedic", "batch_size", 1, 16),
    ("deepmedic", "lr", 1e-6, 0.1),
]


def _hp(section: str, name: str, value: object) -> dict:
    return {name: value} if not section else {section: {name: value}}


@pytest.mark.parametrize(("section", "name", "low", "high"), BOUNDS)
def test_overrides_are_bounded(
    cast: Any, api: Any, settings: Any, section: str, name: str, low: float, high: float
) -> None:
    settings.LESIONLOOP_TRAIN_MAX_MINUTES = 60
    client = api(cast.admin)
    field = f"{section}.{name}" if section else name
    step = 1 if isinstance(low, int) and isinstance(high, int) else low / 2
    for value in (low - step, high + (step if step == 1 else high)):
        response = client.post(
            "/api/training-runs/", {"hyperparameters": _hp(section, name, value)}, format="json"
        )
        body = response.json()
        assert response.status_code == 400, (value, body)
        assert body["code"] == "hyperparameter_out_of_range", body
        assert (body["field"], body["min"], body["max"]) == (field, low, high)
        assert field in body["detail"]
    assert not TrainingRun.objects.exists()
    for value in (low, high):
        response = client.post(
            "/api/training-runs/", {"hyperparameters": _hp(section, name, value)}, format="json"
        )
        assert response.status_code == 202, (value, response.json())
        assert response.json()["overrides"] == _hp(section, name, value)
        TrainingRun.objects.all().update(status="failed")  # close it: one open run at a time


def test_cancel_queued_and_finished(cast: Any, api: Any) -> None:
    client = api(cast.admin)
    run_id = client.post("/api/training-runs/", {}, format="json").json()["id"]
    response = client.post(f"/api/training-runs/{run_id}/cancel/")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    again = client.post(f"/api/training-runs/{run_id}/cancel/")
    assert again.status_code == 409 and again.json()["code"] == "not_running"
    assert client.post("/api/training-runs/999999/cancel/").status_code == 404
    assert client.get("/api/training-runs/999999/").status_code == 404
    types = list(AuditEvent.objects.values_list("event_type", flat=True).order_by("id"))
    assert types == ["training_requested", "training_cancelled"]


def test_cancel_running_sets_the_flag(cast: Any, api: Any) -> None:
    run = TrainingRun.objects.create(status="running")
    response = api(cast.admin).post(f"/api/training-runs/{run.pk}/cancel/")
    assert response.status_code == 202
    body = response.json()
    assert (
        body["status"] == "running" and body["cancel_requested"] and body["cancelled_by"] == "ada"
    )


@pytest.mark.parametrize(
    ("threshold", "n_cases", "previous_runs", "starts"),
    [
        (0, 20, 0, False),  # disabled
        (3, 2, 0, False),
        (3, 3, 0, True),
        (3, 5, 1, False),  # all approvals older than the last run
    ],
)
def test_autostart(
    cast: Any,
    cases: Any,
    settings: Any,
    threshold: int,
    n_cases: int,
    previous_runs: int,
    starts: bool,
) -> None:
    settings.LESIONLOOP_RETRAIN_AFTER_APPROVALS = threshold
    cases(n_cases)
    for _ in range(previous_runs):
        TrainingRun.objects.create(status="succeeded", eligible_count=n_cases)
    run = services.training_maybe_autostart()
    assert (run is not None) == starts
    if run:
        assert run.trigger == "auto" and run.started_by is None
        assert services.training_maybe_autostart() is None  # one is open now


def test_autostart_counts_new_approvals_since_last_run(
    cast: Any, cases: Any, settings: Any
) -> None:
    settings.LESIONLOOP_RETRAIN_AFTER_APPROVALS = 2
    cases(4)
    TrainingRun.objects.create(status="succeeded", eligible_count=4)
    assert services.training_maybe_autostart() is None
    cases(1, start=10)
    assert services.training_maybe_autostart() is None
    cases(1, start=11)
    assert services.training_maybe_autostart() is not None


def test_schema_is_clean_for_training_and_models() -> None:
    from drf_spectacular.generators import SchemaGenerator

    from lesionloop.registry.api import urls

    generator = SchemaGenerator(patterns=urls.urlpatterns)
    schema = generator.get_schema(request=None, public=True)
    paths = schema["paths"]
    assert "/models/{version_id}/lineage/" in paths
    assert "post" in paths["/training-runs/"]

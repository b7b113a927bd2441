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
        ({"hyperparameters": {"unet": {"epochs": 0}}}, 400, "invalid_hyperparameter"),
        ({"hyperparameters": {"unet": {"loss": "mse"}}}, 400, "invalid_hyperparameter"),
        ({"hyperparameters": {"device": "cuda"}}, 400, "invalid_hyperparameter"),
        ({"hyperparameters": [1]}, 400, "invalid"),
    ],
)
def test_start_validates_overrides(
    cast: Any, api: Any, body: dict, status: int, code: str | None
) -> None:
    response = api(cast.admin).post("/api/training-runs/", body, format="json")
    assert response.status_code == status, response.json()
    if code:
        assert response.json()["code"] == code


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

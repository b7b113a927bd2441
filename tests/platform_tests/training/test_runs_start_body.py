"""POST /api/training-runs/ refuses fields it does not know; the duration estimate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from lesionloop.training import services
from lesionloop.training.models import TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_enqueue(monkeypatch: Any) -> None:
    monkeypatch.setattr(services, "training_run_enqueue", lambda rid, delay_ms=None: None)


@pytest.mark.parametrize(
    ("body", "status", "code", "unknown"),
    [
        ({}, 202, None, None),
        ({"hyperparameters": {"seed": 3}}, 202, None, None),
        # a misspelt option used to run the defaults silently
        ({"hyperparams": {"unet": {"epochs": 3}}}, 400, "unknown_field", ["hyperparams"]),
        ({"max_minutes": 5}, 400, "unknown_field", ["max_minutes"]),
        ({"hyperparameters": {}, "b": 1, "a": 2}, 400, "unknown_field", ["a", "b"]),
        ([{"hyperparameters": {}}], 400, "bad_body", None),
    ],
)
def test_start_refuses_unknown_fields(
    cast: Any, api: Any, body: Any, status: int, code: str | None, unknown: list[str] | None
) -> None:
    response = api(cast.admin).post("/api/training-runs/", body, format="json")
    assert response.status_code == status, response.json()
    if code:
        assert response.json()["code"] == code and response.json()["detail"]
        assert response.json().get("fields") == unknown
        assert not TrainingRun.objects.exists()  # nothing started


def test_estimate_is_the_budget_until_runs_have_finished(
    cast: Any, api: Any, settings: Any
) -> None:
    settings.LESIONLOOP_TRAIN_MAX_MINUTES = 60
    body = api(cast.clinician).get("/api/training-runs/estimate/").json()
    # the config's budget is 70 % of the hard limit; validation adds about 10 %
    assert body["budget_minutes"] == 42.0 and body["limit_minutes"] == 60.0
    assert body["expected_minutes"] == 46.2 and body["recent_minutes"] == []
    assert "budget" in body["basis"] and body["eligible_studies"] == 0
    now = timezone.now()
    for minutes in (30, 50, 40):
        TrainingRun.objects.create(
            status="succeeded", started_at=now - timedelta(minutes=minutes), finished_at=now
        )
    body = api(cast.admin).get("/api/training-runs/estimate/").json()
    assert sorted(body["recent_minutes"]) == [30.0, 40.0, 50.0]
    assert body["expected_minutes"] == 40.0 and "median" in body["basis"]


def test_estimate_needs_a_role(api: Any, cast: Any) -> None:
    assert api(cast.nobody).get("/api/training-runs/estimate/").status_code == 403

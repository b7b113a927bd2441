from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def studies_calls(monkeypatch: Any) -> list[tuple[str, Any]]:
    """Record calls into the studies app after an activation (platform A's code)."""
    from lesionloop.studies import services as studies

    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        studies,
        "studies_presegment_unreviewed",
        lambda *, model_version_id: calls.append(("presegment_unreviewed", model_version_id)) or 0,
    )
    monkeypatch.setattr(
        studies,
        "studies_awaiting_model_enqueue",
        lambda: calls.append(("awaiting_model_enqueue", None)) or 0,
    )
    return calls


@pytest.fixture(autouse=True)
def activation_job_at_once(monkeypatch: Any) -> None:
    """The job after an activation is queued on commit, and a test's transaction never
    commits: run the actor's function at once instead (ids in, like the worker)."""
    from types import SimpleNamespace

    from django.db import transaction

    from lesionloop.loop import flows, tasks

    actor = tasks.model_version_activated_task
    monkeypatch.setattr(
        flows,
        "transaction",
        SimpleNamespace(on_commit=lambda func: func(), atomic=transaction.atomic),
    )
    monkeypatch.setattr(actor, "send", lambda *args: actor.fn(*args))


@pytest.fixture
def versions(cast: Any) -> Any:
    """v1 active (dsc .70, small .60), v2 candidate child of v1, v3 failed."""
    from django.utils import timezone

    from lesionloop.registry.models import ModelVersion

    def make(name: str, status: str, parent: Any = None, **metrics: Any) -> ModelVersion:
        return ModelVersion.objects.create(
            name=name,
            status=status,
            parent=parent,
            preset="lite",
            metrics=metrics,
            created_by=cast.admin,
            weights=[{"file": "unet.pt", "sha256": "a" * 64}],
            weights_dir=f"models/{name}",
            promoted_at=timezone.now() if status == "active" else None,
        )

    class V:
        v1 = make("v1", "active", dsc=0.70, small_sensitivity=0.60)
        v2 = make("v2", "candidate", v1, dsc=0.71, small_sensitivity=0.60)
        v3 = make("v3", "failed", v1)

    V.make = staticmethod(make)
    return V

"""/api/models/: roles matrix, promote (policy, override), rollback, lineage, audit."""

from __future__ import annotations

from typing import Any

import pytest

from lesionloop.audit.models import AuditEvent
from lesionloop.registry.models import ModelVersion

FIELDS = {
    "id",
    "name",
    "parent",
    "status",
    "preset",
    "metrics",
    "created_at",
    "created_by",
    "promoted_at",
    "train_study_ids",
    "val_study_ids",
    "weights",
    "code_version",
    "hyperparameters",
}


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        ("clinician", 200, 403),
        ("admin", 200, 200),
        ("auditor", 200, 403),
        ("nobody", 403, 403),
        (None, 403, 403),
    ],
)
def test_roles_matrix(
    cast: Any, api: Any, versions: Any, role: str | None, read: int, write: int
) -> None:
    client = api(getattr(cast, role) if role else None)
    v1, v2 = versions.v1, versions.v2
    assert client.get("/api/models/").status_code == read
    assert client.get(f"/api/models/{v2.pk}/").status_code == read
    assert client.get(f"/api/models/{v2.pk}/lineage/").status_code == read
    assert client.post(f"/api/models/{v2.pk}/promote/", {}, format="json").status_code == write
    assert client.post(f"/api/models/{v1.pk}/rollback/", {}, format="json").status_code == write


def test_list_and_detail_shape(cast: Any, api: Any, versions: Any) -> None:
    client = api(cast.clinician)
    rows = client.get("/api/models/").json()["results"]
    assert [r["name"] for r in rows] == ["v3", "v2", "v1"]
    detail = client.get(f"/api/models/{versions.v2.pk}/").json()
    assert FIELDS <= set(detail)
    assert detail["parent"] == {"id": versions.v1.pk, "name": "v1", "status": "active"}
    assert detail["created_by"] == "ada"
    assert detail["weights"] == [{"file": "unet.pt", "sha256": "a" * 64}]
    assert client.get("/api/models/99999/").status_code == 404


def test_promote_not_worse(cast: Any, api: Any, versions: Any, studies_calls: list) -> None:
    response = api(cast.admin).post(f"/api/models/{versions.v2.pk}/promote/", {}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "active" and response.json()["promoted_by"] == "ada"
    versions.v1.refresh_from_db()
    assert versions.v1.status == "retired" and "replaced by v2" in versions.v1.status_reason
    assert studies_calls == [("presegment_unreviewed", versions.v2.pk)]
    event = AuditEvent.objects.get(event_type="model_promoted")
    assert event.model_version_id == versions.v2.pk and event.actor == cast.admin
    assert event.payload["previous"] == "v1" and event.payload["comparison"]["worse"] is False


def test_promote_worse_needs_a_reason(cast: Any, api: Any, versions: Any) -> None:
    worse = versions.make("v4", "candidate", versions.v1, dsc=0.75, small_sensitivity=0.40)
    client = api(cast.admin)
    refused = client.post(f"/api/models/{worse.pk}/promote/", {}, format="json")
    assert refused.status_code == 409
    body = refused.json()
    assert body["code"] == "worse_than_active" and body["active"] == "v1"
    assert [c["ok"] for c in body["comparison"]["checks"]] == [False, True]
    assert ModelVersion.objects.get(status="active") == versions.v1
    ok = client.post(
        f"/api/models/{worse.pk}/promote/",
        {"override_reason": "radiologist review of v4 on 12 cases"},
        format="json",
    )
    assert ok.status_code == 200 and ok.json()["promotion_note"].startswith("radiologist")
    types = list(AuditEvent.objects.order_by("id").values_list("event_type", flat=True))
    assert types == ["model_promoted", "model_promotion_override"]
    override = AuditEvent.objects.get(event_type="model_promotion_override")
    assert override.payload["override_reason"] == "radiologist review of v4 on 12 cases"


def test_promote_compares_against_parent_rescored_on_same_split(
    cast: Any, api: Any, versions: Any
) -> None:
    # Worse than v1's stored metrics, but not than v1 rescored on v5's own validation studies.
    v5 = versions.make(
        "v5",
        "candidate",
        versions.v1,
        dsc=0.60,
        small_sensitivity=0.5,
        baseline={"dsc": 0.60, "small_sensitivity": 0.5},
    )
    response = api(cast.admin).post(f"/api/models/{v5.pk}/promote/", {}, format="json")
    assert response.status_code == 200


@pytest.mark.parametrize(("which", "code"), [("v1", "not_candidate"), ("v3", "not_candidate")])
def test_promote_refuses_non_candidates(
    cast: Any, api: Any, versions: Any, which: str, code: str
) -> None:
    response = api(cast.admin).post(
        f"/api/models/{getattr(versions, which).pk}/promote/", {}, format="json"
    )
    assert response.status_code == 409 and response.json()["code"] == code


def test_first_activation_releases_waiting_studies(
    cast: Any, versions: Any, studies_calls: list
) -> None:
    from lesionloop.loop.flows import model_version_promote

    ModelVersion.objects.filter(pk=versions.v1.pk).update(status="retired", promoted_at=None)
    model_version_promote(version_id=versions.v2.pk, user=cast.admin)
    assert studies_calls == [
        ("awaiting_model_enqueue", None),
        ("presegment_unreviewed", versions.v2.pk),
    ]


def test_rollback_in_one_step(cast: Any, api: Any, versions: Any, studies_calls: list) -> None:
    client = api(cast.admin)
    assert (
        client.post(f"/api/models/{versions.v2.pk}/promote/", {}, format="json").status_code == 200
    )
    response = client.post(
        f"/api/models/{versions.v1.pk}/rollback/", {"reason": "v2 misses lesions"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "active"
    versions.v2.refresh_from_db()
    assert versions.v2.status == "retired"
    event = AuditEvent.objects.get(event_type="model_rolled_back")
    assert event.payload == {"version": "v1", "previous": "v2", "reason": "v2 misses lesions"}
    assert studies_calls[-1] == ("presegment_unreviewed", versions.v1.pk)


@pytest.mark.parametrize(
    ("which", "code"),
    [("v1", "already_active"), ("v2", "not_rollback_target"), ("v3", "not_rollback_target")],
)
def test_rollback_refusals(cast: Any, api: Any, versions: Any, which: str, code: str) -> None:
    response = api(cast.admin).post(
        f"/api/models/{getattr(versions, which).pk}/rollback/", {}, format="json"
    )
    assert response.status_code == 409 and response.json()["code"] == code


def test_lineage(cast: Any, api: Any, versions: Any) -> None:
    from lesionloop.studies.models import Prediction, Study

    s1, s2, s3 = (Study.objects.create(patient_label=f"P{i}", status="approved") for i in range(3))
    review = Study.objects.create(patient_label="R", status="ready")
    v2 = versions.v2
    ModelVersion.objects.filter(pk=v2.pk).update(
        train_study_ids=[s1.pk, s2.pk], val_study_ids=[s3.pk]
    )
    Prediction.objects.create(study=review, model_version=v2, directory="x", lesions=[{"label": 1}])
    child = versions.make("v6", "candidate", v2)
    body = api(cast.auditor).get(f"/api/models/{child.pk}/lineage/").json()
    assert [p["name"] for p in body["parents"]] == ["v2", "v1"]
    body = api(cast.auditor).get(f"/api/models/{v2.pk}/lineage/").json()
    assert body["version"]["name"] == "v2"
    assert [s["id"] for s in body["trained_on"]] == [s1.pk, s2.pk]
    assert [s["patient_label"] for s in body["validated_on"]] == ["P2"]
    assert (
        body["presegmented"][0]["id"] == review.pk and body["presegmented"][0]["lesion_count"] == 1
    )

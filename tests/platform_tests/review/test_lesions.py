"""GET /api/studies/{id}/lesions/ and PATCH a lesion's decision."""

from __future__ import annotations

from typing import Any

import pytest

from tests.platform_tests.studies.helpers import make_study

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("query", "order"),
    [("", [1, 2, 3]), ("?ordering=volume_mm3", [1, 2, 3]), ("?ordering=-volume_mm3", [3, 2, 1])],
)
def test_list_ordering(api: Any, cast: Any, query: str, order: list[int]) -> None:
    study = make_study()
    rows = api(cast.auditor).get(f"/api/studies/{study.pk}/lesions/{query}").json()
    assert [r["label"] for r in rows] == order
    row = rows[0]
    assert set(row) == {
        "id",
        "label",
        "volume_mm3",
        "centroid_vox",
        "centroid_mm",
        "bbox",
        "largest_slice",
        "longest_axial_diameter_mm",
        "longest_diameter_mm",
        "mean_prob",
        "max_prob",
        "disagreement",
        "model_version",
        "decision",
        "decided_by",
        "decided_at",
        "contour_source",
    }
    assert row["decision"] == "pending" and row["model_version"]["name"]


def test_bad_ordering(api: Any, cast: Any) -> None:
    study = make_study()
    response = api(cast.clinician).get(f"/api/studies/{study.pk}/lesions/?ordering=label")
    assert response.status_code == 400 and response.json()["code"] == "bad_ordering"


@pytest.mark.parametrize(
    ("decision", "status", "decided"),
    [
        ("accepted", 200, True),
        ("rejected", 200, True),
        ("pending", 200, False),
        ("edited", 400, None),
        ("", 400, None),
    ],
)
def test_decide(api: Any, cast: Any, decision: str, status: int, decided: bool | None) -> None:
    study = make_study()
    lesion = study.lesions.order_by("label").first()
    response = api(cast.clinician).patch(
        f"/api/studies/{study.pk}/lesions/{lesion.pk}/", {"decision": decision}, format="json"
    )
    assert response.status_code == status, response.content
    if status == 200:
        body = response.json()
        assert body["decision"] == decision
        assert (body["decided_by"] == "cora") is decided and (
            body["decided_at"] is not None
        ) is decided
        assert study.audit_events.filter(event_type="lesion_decision").count() == 1


def test_rejected_lesions_leave_the_worklist_counts(api: Any, cast: Any) -> None:
    study = make_study()
    smallest = study.lesions.order_by("volume_mm3").first()
    api(cast.clinician).patch(
        f"/api/studies/{study.pk}/lesions/{smallest.pk}/", {"decision": "rejected"}, format="json"
    )
    study.refresh_from_db()
    assert study.lesion_count == 2 and study.smallest_lesion_mm3 > smallest.volume_mm3


def test_lesion_of_another_study_is_404(api: Any, cast: Any) -> None:
    a, b = make_study(), make_study()
    lesion = b.lesions.first()
    response = api(cast.clinician).patch(
        f"/api/studies/{a.pk}/lesions/{lesion.pk}/", {"decision": "accepted"}, format="json"
    )
    assert response.status_code == 404

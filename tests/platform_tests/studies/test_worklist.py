"""GET /api/studies/: filters, ordering, lease and registration flags, constant queries."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lesionloop.studies.models import Study

from .helpers import make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def studies(cast: Any) -> dict[str, Study]:
    a = make_study(patient_label="ALPHA", boxes=[(0, 0, 0, 1, 1, 1)])
    b = make_study(patient_label="BRAVO", boxes=[(0, 0, 0, 2, 4, 4), (4, 10, 10, 6, 12, 12)])
    c = make_study(patient_label="CHARLIE", boxes=[], registration_ok=False)
    Study.objects.filter(pk=a.pk).update(priority=3.0)
    Study.objects.filter(pk=b.pk).update(priority=1.0)
    Study.objects.filter(pk=c.pk).update(priority=2.0, status="awaiting_model")
    return {"a": a, "b": b, "c": c}


def labels(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["patient_label"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["ALPHA", "CHARLIE", "BRAVO"]),
        ("?ordering=-priority", ["ALPHA", "CHARLIE", "BRAVO"]),
        ("?ordering=created_at", ["ALPHA", "BRAVO", "CHARLIE"]),
        ("?ordering=-created_at", ["CHARLIE", "BRAVO", "ALPHA"]),
        ("?ordering=lesion_count", ["CHARLIE", "ALPHA", "BRAVO"]),
        ("?ordering=smallest_lesion_mm3", ["ALPHA", "BRAVO", "CHARLIE"]),
        ("?ordering=status", ["CHARLIE", "ALPHA", "BRAVO"]),
        ("?status=ready", ["ALPHA", "BRAVO"]),
        ("?status=ready,awaiting_model", ["ALPHA", "CHARLIE", "BRAVO"]),
        ("?search=brav", ["BRAVO"]),
        ("?search=nothing", []),
    ],
)
def test_filters_and_ordering(
    api: Any, cast: Any, studies: dict, query: str, expected: list[str]
) -> None:
    assert labels(api(cast.auditor).get(f"/api/studies/{query}")) == expected


@pytest.mark.parametrize(
    ("query", "code"), [("?ordering=bogus", "bad_ordering"), ("?status=nope", "bad_status")]
)
def test_bad_parameters_are_400(api: Any, cast: Any, query: str, code: str) -> None:
    response = api(cast.clinician).get(f"/api/studies/{query}")
    assert response.status_code == 400 and response.json()["code"] == code


def test_row_shape_with_lease_and_registration_flag(api: Any, cast: Any, studies: dict) -> None:
    api(cast.clinician).post(f"/api/studies/{studies['a'].pk}/lease/")
    rows = {
        r["patient_label"]: r for r in api(cast.clinician2).get("/api/studies/").json()["results"]
    }
    row = rows["ALPHA"]
    assert set(row) == {
        "id",
        "patient_label",
        "description",
        "status",
        "status_reason",
        "priority",
        "lesion_count",
        "smallest_lesion_mm3",
        "model_version",
        "lease",
        "registration_ok",
        "registration_message",
        "created_at",
        "updated_at",
        "approved_at",
        "approved_by",
    }
    assert row["lease"]["user"] == "cora" and row["status"] == "in_review"
    assert row["model_version"]["name"].startswith("m")
    assert rows["CHARLIE"]["registration_ok"] is False and rows["CHARLIE"]["lease"] is None
    assert rows["CHARLIE"]["registration_message"] == "poor fit"
    assert row["registration_message"] == ""
    assert rows["BRAVO"]["lesion_count"] == 2 and rows["BRAVO"]["smallest_lesion_mm3"] == 36.0 * 8


def test_query_count_does_not_grow_with_page_size(api: Any, cast: Any) -> None:
    for i in range(12):
        make_study(patient_label=f"P{i}", boxes=[(0, 0, 0, 1, 1, 1)])
    client = api(cast.clinician)
    api(cast.clinician2).post(f"/api/studies/{Study.objects.first().pk}/lease/")
    client.get("/api/studies/")  # the user's roles are read once and cached
    counts = []
    for size in (2, 10):
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/api/studies/", {"page_size": size})
        assert len(response.json()["results"]) == size
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1] == 2  # count, page


def test_the_page_query_leaves_the_json_a_row_does_not_show_unread(api: Any, cast: Any) -> None:
    from lesionloop.registry.models import ModelVersion

    make_study(patient_label="P1", boxes=[(0, 0, 0, 1, 1, 1)])
    client = api(cast.clinician)
    client.get("/api/studies/")
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/api/studies/")
    assert response.status_code == 200 and response.json()["results"][0]["model_version"]
    page = ctx.captured_queries[-1]["sql"]
    study, version = Study._meta.db_table, ModelVersion._meta.db_table
    unread = [f'"{study}"."{name}"' for name in ("grid", "report", "dicom")] + [
        f'"{version}"."{name}"'
        for name in ("weights", "train_study_ids", "val_study_ids", "hyperparameters", "metrics")
    ]
    assert [column for column in unread if column in page] == []
    # what a row shows is still read in the same query
    for column in (f'"{study}"."registration"', f'"{version}"."name"'):
        assert column in page


def test_the_built_row_equals_the_declared_fields_walk(api: Any, cast: Any) -> None:
    """The worklist row is built directly for speed; DRF's walk over the declared fields
    gives the same JSON for a plain, a leased, a flagged, an approved and a model-less
    study."""
    from django.utils import timezone

    from lesionloop.studies.api.serializers import StudyRowSerializer
    from lesionloop.studies.selectors import study_worklist

    plain = make_study(patient_label="PLAIN", boxes=[(0, 0, 0, 1, 1, 1)])
    leased = make_study(patient_label="LEASED", boxes=[])
    make_study(patient_label="FLAGGED", boxes=[(0, 0, 0, 2, 2, 2)], registration_ok=False)
    api(cast.clinician2).post(f"/api/studies/{leased.pk}/lease/")
    approved = make_study(patient_label="APPROVED", boxes=[(1, 1, 1, 2, 3, 4)])
    Study.objects.filter(pk=approved.pk).update(
        status="approved", approved_at=timezone.now(), approved_by=cast.clinician
    )
    Study.objects.filter(pk=plain.pk).update(model_version=None, smallest_lesion_mm3=None)
    rows = StudyRowSerializer(list(study_worklist()), many=True).data
    walked = [StudyRowSerializer().generic_representation(s) for s in study_worklist()]
    assert [row["patient_label"] for row in rows] == [row["patient_label"] for row in walked]
    assert [dict(row) for row in rows] == [dict(row) for row in walked]
    assert [list(row) for row in rows] == [list(row) for row in walked]  # same key order
    by_label = {row["patient_label"]: row for row in rows}
    assert by_label["LEASED"]["lease"]["user"] == cast.clinician2.username
    assert by_label["APPROVED"]["approved_by"] == cast.clinician.username
    assert by_label["PLAIN"]["model_version"] is None
    assert by_label["FLAGGED"]["registration_message"] == "poor fit"

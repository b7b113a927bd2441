"""GET /api/audit/ (auditor, admin) and GET /api/studies/{id}/timeline/."""

from __future__ import annotations

from typing import Any

import pytest

from lesionloop.audit.services import audit_record
from tests.platform_tests.studies.helpers import make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(cast: Any) -> dict[str, Any]:
    a, b = make_study(), make_study()
    audit_record(event_type="note", actor=cast.clinician, study=a, text="hello")
    audit_record(event_type="note", actor=cast.admin, study=b)
    return {"a": a, "b": b}


@pytest.mark.parametrize(
    ("query", "check"),
    [
        ("event_type=note", lambda rows, t: len(rows) == 2),
        ("actor=cora", lambda rows, t: [r["actor"] for r in rows] == ["cora"]),
        (
            "study={a}",
            lambda rows, t: all(r["study"] == t["a"].pk for r in rows) and len(rows) >= 2,
        ),
        (
            "model_version={mv}",
            lambda rows, t: {r["model_version"]["id"] for r in rows} == {t["a"].model_version_id},
        ),
    ],
)
def test_filters(api: Any, cast: Any, trail: dict, query: str, check: Any) -> None:
    q = query.format(a=trail["a"].pk, mv=trail["a"].model_version_id)
    response = api(cast.auditor).get(f"/api/audit/?{q}")
    assert response.status_code == 200
    assert check(response.json()["results"], trail)


def test_bad_filter_is_400(api: Any, cast: Any) -> None:
    response = api(cast.admin).get("/api/audit/?study=abc")
    assert response.status_code == 400 and response.json()["code"] == "bad_filter"


def test_timeline_oldest_first(api: Any, cast: Any, trail: dict) -> None:
    rows = api(cast.clinician).get(f"/api/studies/{trail['a'].pk}/timeline/").json()
    assert rows[0]["event_type"] == "mask_revision" and rows[-1]["event_type"] == "note"
    assert rows[-1]["payload"] == {"text": "hello"}
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)


@pytest.mark.parametrize(
    ("ordering", "newest_first"), [("", False), ("created_at", False), ("-created_at", True)]
)
def test_trail_ordering(
    api: Any, cast: Any, trail: dict, ordering: str, newest_first: bool
) -> None:
    rows = api(cast.auditor).get(f"/api/audit/?ordering={ordering}").json()["results"]
    ids = [r["id"] for r in rows]
    assert len(ids) >= 2
    assert ids == sorted(ids, reverse=newest_first)


def test_unknown_ordering_is_400(api: Any, cast: Any) -> None:
    response = api(cast.auditor).get("/api/audit/?ordering=actor")
    assert response.status_code == 400 and response.json()["code"] == "bad_filter"

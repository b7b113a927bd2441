"""/api/studies/{id}/rulers/: the viewer's rulers kept per study and user, audited.

The study helper's grid is (8, 32, 32) voxels of 4 x 3 x 3 mm, so a plane's pixels are
axial 3 x 3 mm, coronal and sagittal 4 mm per row (a slice) x 3 mm per column."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.platform_tests.studies.helpers import make_study

pytestmark = pytest.mark.django_db


def url(study: Any, ruler_id: int | None = None) -> str:
    tail = f"{ruler_id}/" if ruler_id is not None else ""
    return f"/api/studies/{study.pk}/rulers/{tail}"


# (plane, slice, a, b, length in mm worked by hand)
RULERS = [
    ("axial", 3, [0, 0], [3, 4], 15.0),  # 3 rows x 3 mm, 4 columns x 3 mm: 9-12-15
    ("coronal", 31, [0, 0], [3, 0], 12.0),  # 3 rows = 3 slices of 4 mm
    ("sagittal", 0, [7.5, -0.5], [7.5, 4.5], 15.0),  # image edges: 5 columns x 3 mm
]


def test_rulers_are_kept_listed_replaced_and_deleted(api: Any, cast: Any) -> None:
    from lesionloop.audit.models import AuditEvent

    study = make_study()
    client = api(cast.clinician)
    ids = {}
    for plane, k, a, b, mm in RULERS:
        r = client.post(url(study), {"plane": plane, "slice": k, "a": a, "b": b}, format="json")
        assert r.status_code == 201, r.content
        body = r.json()
        assert (body["plane"], body["slice"], body["a"], body["b"]) == (plane, k, a, b)
        assert body["length_mm"] == pytest.approx(mm)
        ids[plane] = body["id"]
    listed = client.get(url(study)).json()
    assert [(r["plane"], r["length_mm"]) for r in listed] == [(p, mm) for p, _, _, _, mm in RULERS]

    # A new axial ruler replaces the old one (the viewer draws one per plane).
    r = client.post(
        url(study), {"plane": "axial", "slice": 5, "a": [1, 1], "b": [1, 2]}, format="json"
    )
    assert r.status_code == 201 and r.json()["length_mm"] == pytest.approx(3.0)
    axial = [x for x in client.get(url(study)).json() if x["plane"] == "axial"]
    assert [(x["id"], x["slice"]) for x in axial] == [(r.json()["id"], 5)]
    saved = AuditEvent.objects.filter(event_type="ruler_saved").order_by("pk")
    assert saved.count() == 4
    last = saved.last()
    assert last.actor == cast.clinician and last.study_id == study.pk
    assert last.payload["replaced"] == [ids["axial"]] and last.payload["length_mm"] == 3.0

    # Delete one, then all.
    assert client.delete(url(study, ids["coronal"])).status_code == 204
    assert [x["plane"] for x in client.get(url(study)).json()] == ["axial", "sagittal"]
    assert client.delete(url(study, ids["coronal"])).json()["code"] == "not_found"
    assert client.delete(url(study)).status_code == 204
    assert client.get(url(study)).json() == []
    deleted = AuditEvent.objects.filter(event_type="ruler_deleted").order_by("pk")
    assert [e.payload["planes"] for e in deleted] == [["coronal"], ["axial", "sagittal"]]


def test_each_user_keeps_their_own(api: Any, cast: Any) -> None:
    """Read-only roles measure too; nobody sees or deletes another user's rulers."""
    from lesionloop.review.models import Ruler

    study = make_study(status="approved")  # measuring changes no contour
    body = {"plane": "axial", "slice": 0, "a": [0, 0], "b": [0, 1]}
    mine = api(cast.clinician).post(url(study), body, format="json").json()
    theirs = api(cast.auditor).post(url(study), {**body, "b": [0, 2]}, format="json").json()
    assert [r["id"] for r in api(cast.clinician).get(url(study)).json()] == [mine["id"]]
    assert [r["id"] for r in api(cast.auditor).get(url(study)).json()] == [theirs["id"]]
    assert api(cast.clinician2).get(url(study)).json() == []
    gone = api(cast.clinician2).delete(url(study, mine["id"]))
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"
    assert api(cast.clinician2).delete(url(study)).status_code == 204  # theirs: none
    assert Ruler.objects.count() == 2
    assert api(cast.nobody).get(url(study)).status_code == 403
    assert api(None).post(url(study), body, format="json").status_code in (401, 403)


GOOD = {"plane": "axial", "slice": 2, "a": [1, 1], "b": [4, 5]}

# (case, raw JSON body, status, code)
BAD = [
    ("unknown plane", {**GOOD, "plane": "oblique"}, 400, "bad_plane"),
    ("plane not text", {**GOOD, "plane": 1}, 400, "bad_plane"),
    ("plane missing", {k: v for k, v in GOOD.items() if k != "plane"}, 400, "invalid"),
    ("slice below 0", {**GOOD, "slice": -1}, 400, "bad_slice"),
    ("slice past the last axial", {**GOOD, "slice": 8}, 400, "bad_slice"),
    (
        "coronal slice past 31",
        {**GOOD, "plane": "coronal", "slice": 32, "a": [0, 0], "b": [1, 1]},
        400,
        "bad_slice",
    ),
    ("slice a fraction", {**GOOD, "slice": 1.5}, 400, "bad_slice"),
    ("slice as text", {**GOOD, "slice": "2"}, 400, "bad_slice"),
    ("slice true", {**GOOD, "slice": True}, 400, "bad_slice"),
    (
        "infinite row",
        '{"plane": "axial", "slice": 2, "a": [1e999, 1], "b": [4, 5]}',
        400,
        "bad_point",
    ),
    (
        "minus infinite col",
        '{"plane": "axial", "slice": 2, "a": [1, 1], "b": [4, -1e999]}',
        400,
        "bad_point",
    ),
    ("NaN literal", '{"plane": "axial", "slice": 2, "a": [NaN, 1], "b": [4, 5]}', 400, "bad_json"),
    ("NaN as text", {**GOOD, "a": ["NaN", 1]}, 400, "bad_point"),
    ("null coordinate", {**GOOD, "b": [None, 5]}, 400, "bad_point"),
    ("three coordinates", {**GOOD, "a": [1, 1, 1]}, 400, "bad_point"),
    ("a point as an object", {**GOOD, "a": {"row": 1, "col": 1}}, 400, "bad_point"),
    ("row past the image", {**GOOD, "a": [31.6, 1]}, 400, "bad_point"),
    ("coronal row past 8 slices", {**GOOD, "plane": "coronal", "a": [7.6, 0]}, 400, "bad_point"),
    ("unknown field", {**GOOD, "colour": "red"}, 400, "unknown_field"),
    ("not an object", [GOOD], 400, "bad_body"),
]


@pytest.mark.parametrize(("case", "body", "status", "code"), BAD, ids=[b[0] for b in BAD])
def test_bad_rulers_are_refused_and_store_nothing(
    api: Any, cast: Any, case: str, body: Any, status: int, code: str
) -> None:
    from lesionloop.audit.models import AuditEvent
    from lesionloop.review.models import Ruler

    study = make_study()
    client = api(cast.clinician)
    kept = client.post(url(study), {**GOOD, "slice": 1}, format="json").json()
    raw = body if isinstance(body, str) else json.dumps(body)
    r = client.post(url(study), raw, content_type="application/json")
    assert r.status_code == status, (case, r.content)
    assert r.json()["code"] == code and r.json()["detail"]
    # The ruler kept before is still the one there.
    assert list(Ruler.objects.values_list("pk", "slice_index")) == [(kept["id"], 1)]
    assert AuditEvent.objects.filter(event_type="ruler_saved").count() == 1


def test_unknown_study_and_study_without_images(api: Any, cast: Any) -> None:
    from lesionloop.studies.models import Study

    client = api(cast.clinician)
    missing = client.post("/api/studies/999999/rulers/", GOOD, format="json")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert client.get("/api/studies/999999/rulers/").status_code == 404
    bare = Study.objects.create(status="received", source="upload")
    r = client.post(url(bare), GOOD, format="json")
    assert r.status_code == 409 and r.json()["code"] == "not_ready"

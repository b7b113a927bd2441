"""GET/PUT /api/studies/{id}/mask/: revisions, If-Match, the lesion diff, the lease."""

from __future__ import annotations

import gzip
from typing import Any

import numpy as np
import pytest

from lesionloop.review.models import MaskRevision
from lesionloop.studies import storage
from tests.platform_tests.studies.helpers import SHAPE, labels_with_boxes, make_study, put_mask

pytestmark = pytest.mark.django_db
BOXES = [(2, 4, 4, 3, 5, 5), (2, 10, 10, 4, 13, 13), (4, 20, 20, 7, 26, 26)]


def current(api: Any, user: Any, study_id: int) -> np.ndarray:
    response = api(user).get(f"/api/studies/{study_id}/mask/")
    assert response.status_code == 200
    return np.frombuffer(gzip.decompress(b"".join(response.streaming_content)), "<u2").reshape(
        SHAPE
    )


def test_get_mask_headers_and_content(api: Any, cast: Any) -> None:
    study = make_study()
    response = api(cast.auditor).get(f"/api/studies/{study.pk}/mask/")
    assert response.status_code == 200
    assert response["ETag"] == '"1"' and response["X-Revision"] == "1"
    assert response["Content-Encoding"] == "gzip" and response["X-Volume-Shape"] == "8,32,32"
    assert np.array_equal(current(api, cast.auditor, study.pk), labels_with_boxes(BOXES))
    again = api(cast.auditor).get(f"/api/studies/{study.pk}/mask/", HTTP_IF_NONE_MATCH='"1"')
    assert again.status_code == 304


def test_put_diffs_lesions_added_edited_rejected(api: Any, cast: Any) -> None:
    study = make_study()
    mask = labels_with_boxes(BOXES)
    mask[mask == 1] = 0  # erase lesion 1
    mask[7, 0:2, 0:2] = 3  # grow lesion 3
    mask[0, 30:32, 30:32] = 9  # draw a new lesion
    response = put_mask(api(cast.clinician), study.pk, mask, revision=1, reason="fix")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["revision"]["number"] == 2 and body["revision"]["author"] == "cora"
    assert body["revision"]["reason"] == "fix" and response["ETag"] == '"2"'
    decisions = {row["label"]: row["decision"] for row in body["lesions"]}
    assert decisions == {1: "rejected", 2: "pending", 3: "edited", 9: "added"}
    added = next(r for r in body["lesions"] if r["label"] == 9)
    assert added["volume_mm3"] == 4 * 36.0 and added["bbox"] == [0, 30, 30, 1, 32, 32]
    assert added["decided_by"] == "cora" and added["model_version"] is None
    assert np.array_equal(current(api, cast.clinician, study.pk), mask)
    # every revision is kept, revision 1 still authored by the model
    revs = list(MaskRevision.objects.filter(study=study).order_by("number"))
    assert [r.number for r in revs] == [1, 2] and revs[0].author is None
    assert storage.absolute(revs[0].file).exists() and storage.absolute(revs[1].file).exists()
    study.refresh_from_db()
    assert study.lesion_count == 3 and study.status == "in_review"


def test_stale_if_match_is_409_with_who_when_why(api: Any, cast: Any) -> None:
    study = make_study()
    mask = labels_with_boxes(BOXES)
    assert (
        put_mask(api(cast.clinician), study.pk, mask, revision=1, reason="first").status_code == 200
    )
    api(cast.clinician).delete(f"/api/studies/{study.pk}/lease/")
    response = put_mask(api(cast.clinician2), study.pk, mask, revision=1)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "stale_revision" and body["current_revision"] == 2
    assert body["changed_by"] == "cora" and body["reason"] == "first" and body["changed_at"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ("mask", {}, 428, "if_match_required"),
        ("mask", {"HTTP_IF_MATCH": "abc"}, 400, "bad_if_match"),
        ("short", {"HTTP_IF_MATCH": '"1"'}, 400, "bad_mask"),
        ("notgzip", {"HTTP_IF_MATCH": '"1"', "HTTP_CONTENT_ENCODING": "gzip"}, 400, "bad_mask"),
        ("raw", {"HTTP_IF_MATCH": 'W/"1"'}, 200, None),
    ],
)
def test_put_validation(
    api: Any, cast: Any, body: str, headers: dict, status: int, code: str | None
) -> None:
    study = make_study()
    mask = labels_with_boxes(BOXES)
    data = {
        "mask": gzip.compress(mask.astype("<u2").tobytes()),
        "short": gzip.compress(b"\0" * 10),
        "notgzip": b"\x1f\x8bnot really gzip",
        "raw": mask.astype("<u2").tobytes(),
    }[body]
    response = api(cast.clinician).put(
        f"/api/studies/{study.pk}/mask/",
        data=data,
        content_type="application/octet-stream",
        **headers,
    )
    assert response.status_code == status, response.content
    if code:
        assert response.json()["code"] == code


def test_put_needs_the_lease(api: Any, cast: Any) -> None:
    study = make_study()
    api(cast.clinician2).post(f"/api/studies/{study.pk}/lease/")
    response = put_mask(api(cast.clinician), study.pk, labels_with_boxes(BOXES), revision=1)
    assert response.status_code == 409
    assert response.json()["code"] == "leased" and response.json()["user"] == "carl"


def test_approved_study_is_frozen(api: Any, cast: Any) -> None:
    study = make_study(boxes=[])
    assert (
        api(cast.clinician).post(f"/api/studies/{study.pk}/approve/", {}, format="json").status_code
        == 200
    )
    response = put_mask(api(cast.clinician), study.pk, labels_with_boxes(BOXES), revision=1)
    assert response.status_code == 409 and response.json()["code"] == "approved"


def test_a_save_of_one_edited_lesion_takes_a_bounded_number_of_queries(api: Any, cast: Any) -> None:
    """Every statement is a round trip to PostgreSQL under load: the save reads the study
    twice (unlocked for the grid, then locked), renews the lease, diffs against the working
    copy, writes the revision, its audit event, the edited lesion and its audit event, and
    updates the study once for the revision number and the worklist columns."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    study = make_study()
    client = api(cast.clinician)
    mask = labels_with_boxes(BOXES)
    mask[7, 0:2, 0:2] = 3
    assert put_mask(client, study.pk, mask, revision=1).status_code == 200
    mask[7, 0:2, 0:2] = 0  # lesion 3 edited again
    with CaptureQueriesContext(connection) as ctx:
        response = put_mask(client, study.pk, mask, revision=2)
    assert response.status_code == 200, response.content
    statements = [q["sql"].split()[0] for q in ctx.captured_queries]
    study_updates = [
        q["sql"] for q in ctx.captured_queries if q["sql"].startswith('UPDATE "studies_study"')
    ]
    # one for the lease renewal, one for the revision number and the worklist columns
    assert len(study_updates) == 2 and '"revision_number" = 3' in study_updates[1]
    assert len(statements) <= 17, statements

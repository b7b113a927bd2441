"""Review effort measured on real reviews: the counts at approval (through the API, on
hand-made masks), active time from lease renewals, and GET /api/review-effort/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from lesionloop.review.models import ReviewActivity, ReviewEffort
from lesionloop.review.services.effort import review_activity_beat
from tests.platform_tests.studies.helpers import labels_with_boxes, make_study, put_mask

pytestmark = pytest.mark.django_db
# Lesion 1: 1 voxel; lesion 2: 2x3x3 = 18; lesion 3: 3x6x6 = 108 (helpers.DEFAULT_BOXES).
BOXES = [(2, 4, 4, 3, 5, 5), (2, 10, 10, 4, 13, 13), (4, 20, 20, 7, 26, 26)]


@pytest.fixture(autouse=True)
def _no_loop_side_effects(monkeypatch: pytest.MonkeyPatch) -> None:
    from lesionloop.loop import flows

    monkeypatch.setattr(flows, "training_maybe_autostart", lambda: None)
    monkeypatch.setattr(flows.training, "gate_set_update", lambda: None)


def unchanged(m: np.ndarray) -> np.ndarray | None:
    return None  # no save at all


def grow_3_by_4(m: np.ndarray) -> np.ndarray:
    m[4, 26, 20:24] = 3  # 4 voxels touching lesion 3
    return m


def trim_2_by_3(m: np.ndarray) -> np.ndarray:
    m[2, 10, 10:13] = 0
    return m


def draw_4(m: np.ndarray) -> np.ndarray:
    m[0, 0:2, 28:31] = 4  # 6 voxels
    return m


def erase_1(m: np.ndarray) -> np.ndarray:
    m[m == 1] = 0  # erased whole: the save rejects it
    return m


REVIEWS = [
    # name, mask edit, lesions rejected by decision, expected effort
    (
        "all accepted unchanged",
        unchanged,
        [],
        dict(
            model_lesions=3,
            accepted_unchanged=3,
            edited=0,
            rejected=0,
            added=0,
            voxels_added=0,
            voxels_removed=0,
        ),
    ),
    (
        "lesion 3 grown by 4 voxels",
        grow_3_by_4,
        [],
        dict(
            accepted_unchanged=2,
            edited=1,
            rejected=0,
            added=0,
            voxels_added=4,
            voxels_removed=0,
            edited_voxels=4,
        ),
    ),
    (
        "lesion 2 trimmed by 3 voxels, lesion 1 rejected",
        trim_2_by_3,
        [1],
        dict(accepted_unchanged=1, edited=1, rejected=1, added=0, voxels_added=0, voxels_removed=4),
    ),
    (
        "lesion 4 drawn",
        draw_4,
        [],
        dict(accepted_unchanged=3, edited=0, rejected=0, added=1, voxels_added=6, voxels_removed=0),
    ),
    (
        "lesion 1 erased by the brush",
        erase_1,
        [],
        dict(accepted_unchanged=2, edited=0, rejected=1, added=0, voxels_added=0, voxels_removed=1),
    ),
]


@pytest.mark.parametrize(
    ("name", "edit", "reject", "expected"), REVIEWS, ids=[r[0] for r in REVIEWS]
)
def test_effort_recorded_at_approval(
    api: Any, cast: Any, name: str, edit: Any, reject: list[int], expected: dict
) -> None:
    study = make_study(boxes=BOXES)
    client = api(cast.clinician)
    edited = edit(labels_with_boxes(BOXES))
    if edited is not None:
        assert put_mask(client, study.pk, edited, revision=1).status_code == 200
    for lesion in study.lesions.all():
        lesion.refresh_from_db()
        if lesion.decision != "pending":
            continue
        decision = "rejected" if lesion.label in reject else "accepted"
        r = client.patch(
            f"/api/studies/{study.pk}/lesions/{lesion.pk}/", {"decision": decision}, format="json"
        )
        assert r.status_code == 200
    assert client.post(f"/api/studies/{study.pk}/approve/", {}, format="json").status_code == 200
    effort = ReviewEffort.objects.get(study=study)
    assert effort.model_version == study.model_version and effort.reviewer == cast.clinician
    assert {k: getattr(effort, k) for k in expected} == expected


def test_ground_truth_import_has_no_effort(cast: Any) -> None:
    from lesionloop.review.services import study_ground_truth_apply
    from lesionloop.studies import storage

    study = make_study(boxes=BOXES)
    np.save(storage.prepared_dir(study.pk) / "ground_truth.npy", labels_with_boxes(BOXES) > 0)
    study_ground_truth_apply(study=study, approved_by=cast.clinician)
    assert not ReviewEffort.objects.exists()


T0 = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
BEATS = [
    # name, beats (seconds after T0, client, active, lease already held), expected seconds
    ("one active renewal after 10 s", [(0, "a", False, False), (10, "a", True, True)], 10.0),
    ("idle renewals count nothing", [(0, "a", False, False), (40, "a", False, True)], 0.0),
    ("a long gap is capped", [(0, "a", False, False), (600, "a", True, True)], 15.0),
    (
        "the first beat of a new lease counts nothing",
        [(0, "a", False, False), (5, "a", True, False)],
        0.0,
    ),
    ("another tab's gap counts nothing", [(0, "a", True, False), (5, "b", True, True)], 0.0),
    (
        "steady work",
        [
            (0, "a", True, False),
            (8, "a", True, True),
            (16, "a", True, True),
            (56, "a", False, True),
            (60, "a", True, True),
        ],
        20.0,
    ),
]


@pytest.mark.parametrize(("name", "beats", "seconds"), BEATS, ids=[b[0] for b in BEATS])
def test_active_time_from_renewals(cast: Any, name: str, beats: list, seconds: float) -> None:
    study = make_study(boxes=BOXES)
    for t, client, active, continued in beats:
        review_activity_beat(
            study=study,
            client=client,
            active=active,
            continued=continued,
            now=T0 + timedelta(seconds=t),
        )
    assert ReviewActivity.objects.get(study=study).active_seconds == pytest.approx(seconds)


def test_lease_renewals_through_the_api_and_the_effort_endpoint(
    api: Any, cast: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.utils import timezone

    clock = [T0]
    monkeypatch.setattr(timezone, "now", lambda: clock[0])
    study = make_study(boxes=BOXES)
    client = api(cast.clinician)
    url = f"/api/studies/{study.pk}/lease/"
    headers = {"HTTP_X_LEASE_CLIENT": "tab-1"}
    assert client.post(url, {}, format="json", **headers).status_code == 200
    for step, active in ((9, True), (9, False), (9, True)):
        clock[0] += timedelta(seconds=step)
        assert client.post(url, {"active": active}, format="json", **headers).status_code == 200
    assert ReviewActivity.objects.get(study=study).active_seconds == pytest.approx(18.0)
    clock[0] += timedelta(seconds=6)
    for lesion in study.lesions.all():  # decisions count as activity too (6 s, then 0 s)
        client.patch(
            f"/api/studies/{study.pk}/lesions/{lesion.pk}/",
            {"decision": "accepted"},
            format="json",
            **headers,
        )
    clock[0] += timedelta(seconds=30)  # the approval closes the review: capped at 15 s
    assert (
        client.post(f"/api/studies/{study.pk}/approve/", {}, format="json", **headers).status_code
        == 200
    )
    effort = ReviewEffort.objects.get(study=study)
    assert effort.active_seconds == pytest.approx(18 + 6 + 15)
    assert ReviewActivity.objects.get(study=study).active_seconds == 0.0  # moved into the record

    body = api(cast.auditor).get("/api/review-effort/").json()
    (row,) = body["results"]
    assert row["model_version"]["name"] == study.model_version.name
    assert row["n_studies"] == 1 and row["accepted_unchanged_fraction"] == 1.0
    assert row["active_minutes"] == pytest.approx(39 / 60, abs=1e-3)
    per_study = (
        api(cast.admin)
        .get(f"/api/review-effort/?model_version={study.model_version_id}")
        .json()["studies"]
    )
    assert [s["study"] for s in per_study] == [study.pk]
    bad = api(cast.admin).get("/api/review-effort/?model_version=x")
    assert bad.status_code == 400 and bad.json()["code"] == "bad_model_version"
    assert api(None).get("/api/review-effort/").status_code == 403

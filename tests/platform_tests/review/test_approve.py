"""POST approve / reopen: decisions required, frozen contour, training snapshot."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lesionloop.review.models import Approval
from lesionloop.studies.selectors import training_cases
from tests.platform_tests.studies.helpers import labels_with_boxes, make_study

pytestmark = pytest.mark.django_db
BOXES = [(2, 4, 4, 3, 5, 5), (2, 10, 10, 4, 13, 13), (4, 20, 20, 7, 26, 26)]


@pytest.fixture
def autostart(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from lesionloop.loop import flows

    calls: list[int] = []
    monkeypatch.setattr(flows, "training_maybe_autostart", lambda: calls.append(1))
    return calls


def decide_all(api: Any, user: Any, study: Any, decisions: dict[int, str]) -> None:
    for lesion in study.lesions.all():
        r = api(user).patch(
            f"/api/studies/{study.pk}/lesions/{lesion.pk}/",
            {"decision": decisions[lesion.label]},
            format="json",
        )
        assert r.status_code == 200


def test_undecided_lesions_block_approval(api: Any, cast: Any) -> None:
    study = make_study()
    response = api(cast.clinician).post(f"/api/studies/{study.pk}/approve/", {}, format="json")
    assert response.status_code == 409
    assert (
        response.json()["code"] == "undecided_lesions"
        and len(response.json()["pending_lesions"]) == 3
    )


@pytest.mark.parametrize("eligible", [True, False])
def test_approve_freezes_and_snapshots(
    api: Any,
    cast: Any,
    autostart: list[int],
    eligible: bool,
    django_capture_on_commit_callbacks: Any,
) -> None:
    study = make_study()
    decide_all(api, cast.clinician, study, {1: "accepted", 2: "rejected", 3: "accepted"})
    with django_capture_on_commit_callbacks(execute=True):
        response = api(cast.clinician).post(
            f"/api/studies/{study.pk}/approve/", {"training_eligible": eligible}, format="json"
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "approved" and body["approved_by"] == "cora"
    assert body["training_eligible"] is eligible and body["lease"] is None
    assert autostart == ([1] if eligible else [])
    cases = training_cases()
    assert [c.study_id for c in cases] == ([study.pk] if eligible else [])
    if eligible:
        case = cases[0]
        gt = np.load(case.ground_truth_path)
        mask = labels_with_boxes(BOXES)
        assert gt.dtype == np.uint8 and np.array_equal(gt, np.isin(mask, [1, 3]).astype(np.uint8))
        assert (case.training_dir / "model_input.npy").exists()
        assert case.ground_truth_path.parent == case.training_dir and case.revision == 1


def test_reopen_needs_a_new_approval(api: Any, cast: Any, autostart: list[int]) -> None:
    study = make_study(boxes=[])
    client = api(cast.clinician)
    assert client.post(f"/api/studies/{study.pk}/approve/", {}, format="json").status_code == 200
    assert (
        client.post(f"/api/studies/{study.pk}/approve/", {}, format="json").json()["code"]
        == "approved"
    )
    reopened = client.post(f"/api/studies/{study.pk}/reopen/")
    assert reopened.status_code == 200 and reopened.json()["status"] == "in_review"
    assert reopened.json()["approved_at"] is None and training_cases() == []
    assert client.post(f"/api/studies/{study.pk}/reopen/").json()["code"] == "not_approved"
    assert client.post(f"/api/studies/{study.pk}/approve/", {}, format="json").status_code == 200
    assert Approval.objects.filter(study=study).count() == 2
    assert [c.approval_id for c in training_cases()] == [Approval.objects.latest("id").pk]
    types_ = list(study.audit_events.values_list("event_type", flat=True))
    assert types_.count("study_approved") == 2 and "study_reopened" in types_


def test_approval_survives_a_broken_training_hook(
    api: Any, cast: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from lesionloop.loop import flows

    def boom() -> None:
        raise RuntimeError("trainer down")

    monkeypatch.setattr(flows, "training_maybe_autostart", boom)
    study = make_study(boxes=[])
    with django_capture_on_commit_callbacks(execute=True):
        response = api(cast.clinician).post(f"/api/studies/{study.pk}/approve/", {}, format="json")
    assert response.status_code == 200

"""POST/DELETE /api/studies/{id}/lease/: one reviewer at a time, expiring leases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from lesionloop.studies.models import Study
from tests.platform_tests.studies.helpers import make_study

pytestmark = pytest.mark.django_db


def test_take_renew_conflict_release(api: Any, cast: Any) -> None:
    study = make_study()
    cora, carl = api(cast.clinician), api(cast.clinician2)
    first = cora.post(f"/api/studies/{study.pk}/lease/")
    assert first.status_code == 200 and first.json()["user"] == "cora"
    renewed = cora.post(f"/api/studies/{study.pk}/lease/")
    assert renewed.json()["expires_at"] >= first.json()["expires_at"]
    refused = carl.post(f"/api/studies/{study.pk}/lease/")
    assert refused.status_code == 409
    assert refused.json()["code"] == "leased" and refused.json()["user"] == "cora"
    assert "being reviewed by cora" in refused.json()["detail"]
    assert carl.delete(f"/api/studies/{study.pk}/lease/").status_code == 409
    assert cora.delete(f"/api/studies/{study.pk}/lease/").status_code == 204
    assert carl.post(f"/api/studies/{study.pk}/lease/").status_code == 200
    events = list(
        study.audit_events.filter(event_type__startswith="lease").values_list(
            "event_type", "actor_label"
        )
    )
    assert events == [("lease_taken", "cora"), ("lease_released", "cora"), ("lease_taken", "carl")]


def test_expired_lease_can_be_taken(api: Any, cast: Any) -> None:
    study = make_study()
    api(cast.clinician).post(f"/api/studies/{study.pk}/lease/")
    Study.objects.filter(pk=study.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    row = api(cast.auditor).get(f"/api/studies/{study.pk}/").json()
    assert row["lease"] is None
    assert api(cast.clinician2).post(f"/api/studies/{study.pk}/lease/").json()["user"] == "carl"


def test_lease_length_comes_from_settings(api: Any, cast: Any, settings: Any) -> None:
    settings.LESIONLOOP_LEASE_SECONDS = 30
    study = make_study()
    api(cast.clinician).post(f"/api/studies/{study.pk}/lease/")
    study.refresh_from_db()
    left = (study.lease_expires_at - timezone.now()).total_seconds()
    assert 25 < left <= 30


def test_no_lease_on_a_study_that_is_not_ready(api: Any, cast: Any) -> None:
    study = Study.objects.create(status="processing")
    response = api(cast.clinician).post(f"/api/studies/{study.pk}/lease/")
    assert response.status_code == 409 and response.json()["code"] == "not_ready"

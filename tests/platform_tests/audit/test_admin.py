"""The Django admin lists our models; audit events and revisions are read-only there."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from lesionloop.audit.models import AuditEvent
from tests.platform_tests.studies.helpers import make_study

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/admin/studies/study/",
        "/admin/studies/job/",
        "/admin/studies/prediction/",
        "/admin/review/lesion/",
        "/admin/review/maskrevision/",
        "/admin/review/approval/",
        "/admin/audit/auditevent/",
    ],
)
def test_changelists_render(cast: Any, url: str) -> None:
    make_study()
    client = Client()
    client.force_login(cast.admin)
    cast.admin.is_superuser = True
    cast.admin.save()
    assert client.get(url).status_code == 200


def test_audit_events_cannot_be_changed_in_the_admin(cast: Any) -> None:
    make_study()
    cast.admin.is_superuser = True
    cast.admin.save()
    client = Client()
    client.force_login(cast.admin)
    event = AuditEvent.objects.first()
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    page = client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert (
        client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )

"""The DICOM network endpoints: nodes (admins add), send refusals in the house shape."""

from __future__ import annotations

from typing import Any

import pytest

from lesionloop.pacs.models import DicomSend, RemoteNode
from tests.platform_tests.studies.helpers import make_study

pytestmark = pytest.mark.django_db

NODE = {"name": "tps", "ae_title": "TPS", "host": "127.0.0.1", "port": 104, "can_store": True}


@pytest.mark.parametrize(("who", "expected"), [("admin", 201), ("clinician", 403)])
def test_only_admins_add_nodes(api: Any, cast: Any, who: str, expected: int) -> None:
    response = api(getattr(cast, who)).post("/api/pacs/nodes/", NODE, format="json")
    assert response.status_code == expected, response.content
    assert api(cast.clinician).get("/api/pacs/nodes/").status_code == 200


# (study status, node flags, node id override, status code, error code)
REFUSALS = [
    ("approved", {"can_store": True}, 999999, 404, "not_found"),
    ("approved", {"can_store": False}, None, 409, "node_cannot_store"),
    ("ready", {"can_store": True}, None, 409, "not_approved"),
]


@pytest.mark.parametrize(("status", "flags", "node_id", "code", "error"), REFUSALS)
def test_send_refusals(
    api: Any, cast: Any, status: str, flags: dict, node_id: int | None, code: int, error: str
) -> None:
    study = make_study(status=status)
    node = RemoteNode.objects.create(name="n", ae_title="N", host="127.0.0.1", port=104, **flags)
    response = api(cast.clinician).post(
        f"/api/studies/{study.pk}/send/", {"node": node_id or node.pk}, format="json"
    )
    assert response.status_code == code, response.content
    assert response.json()["code"] == error and response.json()["detail"]


def test_send_queues_one_row_per_format_after_commit(
    api: Any, cast: Any, django_capture_on_commit_callbacks: Any
) -> None:
    study = make_study(status="approved")
    node = RemoteNode.objects.create(**{**NODE, "name": "tps2"})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api(cast.clinician).post(
            f"/api/studies/{study.pk}/send/", {"node": node.pk}, format="json"
        )
    assert response.status_code == 202, response.content
    assert [s["format"] for s in response.json()] == ["rtstruct", "seg"]
    assert len(callbacks) == 2
    listed = api(cast.auditor).get(f"/api/studies/{study.pk}/sends/").json()
    assert {s["status"] for s in listed} == {"queued"}
    DicomSend.objects.filter(study=study).update(status="failed")
    retry = api(cast.clinician).post(f"/api/studies/{study.pk}/sends/{listed[0]['id']}/retry/")
    assert retry.status_code == 202 and retry.json()["status"] == "queued"

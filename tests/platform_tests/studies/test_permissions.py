"""Roles on every studies/review/audit endpoint: clinician, admin, auditor, no role, anonymous."""

from __future__ import annotations

from typing import Any

import pytest

from lesionloop.studies.models import Study

from .helpers import labels_with_boxes, make_study, mask_bytes

pytestmark = pytest.mark.django_db

READ = {"clinician", "admin", "auditor"}
REVIEW = {"clinician", "admin"}
AUDIT = {"auditor", "admin"}


def approved(study: Study) -> None:
    Study.objects.filter(pk=study.pk).update(status="approved")


# (name, method, path, body, allowed roles, success status, setup)
ENDPOINTS: list[tuple[str, str, str, Any, set[str], int, Any]] = [
    ("worklist", "get", "/api/studies/", None, READ, 200, None),
    ("detail", "get", "/api/studies/{id}/", None, READ, 200, None),
    ("volume", "get", "/api/studies/{id}/volume/mr/", None, READ, 200, None),
    ("slice", "get", "/api/studies/{id}/volume/ct/?slice=1", None, READ, 200, None),
    ("mask-get", "get", "/api/studies/{id}/mask/", None, READ, 200, None),
    ("mask-put", "put", "/api/studies/{id}/mask/", "mask", REVIEW, 200, None),
    ("lesions", "get", "/api/studies/{id}/lesions/", None, READ, 200, None),
    (
        "decide",
        "patch",
        "/api/studies/{id}/lesions/{lesion}/",
        {"decision": "accepted"},
        REVIEW,
        200,
        None,
    ),
    ("lease-take", "post", "/api/studies/{id}/lease/", None, REVIEW, 200, None),
    ("lease-release", "delete", "/api/studies/{id}/lease/", None, REVIEW, 204, None),
    ("approve", "post", "/api/studies/{id}/approve/", {}, REVIEW, 200, "no-lesions"),
    ("reopen", "post", "/api/studies/{id}/reopen/", None, REVIEW, 200, approved),
    ("timeline", "get", "/api/studies/{id}/timeline/", None, READ, 200, None),
    ("audit", "get", "/api/audit/", None, AUDIT, 200, None),
    ("upload", "post", "/api/studies/", "upload", REVIEW, 400, None),  # no files: past the gate
]
ROLES = ["clinician", "admin", "auditor", "nobody", None]


@pytest.mark.parametrize("role", ROLES, ids=[str(r) for r in ROLES])
@pytest.mark.parametrize(
    ("name", "method", "path", "body", "allowed", "ok", "setup"),
    ENDPOINTS,
    ids=[e[0] for e in ENDPOINTS],
)
def test_matrix(
    api: Any,
    cast: Any,
    role: str | None,
    name: str,
    method: str,
    path: str,
    body: Any,
    allowed: set[str],
    ok: int,
    setup: Any,
) -> None:
    study = make_study(boxes=[] if setup == "no-lesions" else None)
    if callable(setup):
        setup(study)
    lesion = study.lesions.first()
    url = path.format(id=study.pk, lesion=lesion.pk if lesion else 0)
    client = api(getattr(cast, role) if role else None)
    kwargs: dict[str, Any] = {}
    if body == "mask":
        kwargs = {
            "data": mask_bytes(labels_with_boxes([])),
            "content_type": "application/octet-stream",
            "HTTP_CONTENT_ENCODING": "gzip",
            "HTTP_IF_MATCH": '"1"',
        }
    elif body == "upload":
        kwargs = {"data": {}, "format": "multipart"}
    elif body is not None:
        kwargs = {"data": body, "format": "json"}
    response = getattr(client, method)(url, **kwargs)
    if role in allowed:
        assert response.status_code == ok, (
            name,
            role,
            response.status_code,
            getattr(response, "content", b"")[:300],
        )
    elif role is None:
        assert response.status_code in (401, 403)
    else:
        assert response.status_code == 403, (name, role, response.status_code)
        assert response.json()["detail"]

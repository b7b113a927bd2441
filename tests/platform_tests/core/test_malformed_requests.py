"""Malformed requests are 400 with ``{detail, code}``, never 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.platform_tests.studies.helpers import make_study

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("if_match", "status", "code"),
    [
        ('"1"', 400, "bad_mask"),  # a valid revision: the (empty) body is what is wrong
        ('"²"', 400, "bad_if_match"),
        ('"٣"', 400, "bad_if_match"),
        ('"' + "9" * 5000 + '"', 400, "bad_if_match"),
        ('"-1"', 400, "bad_if_match"),
        ('W/"1e3"', 400, "bad_if_match"),
    ],
)
def test_if_match(api: Any, cast: Any, if_match: str, status: int, code: str) -> None:
    study = make_study()
    response = api(cast.clinician).put(
        f"/api/studies/{study.pk}/mask/",
        data=b"not a mask",
        content_type="application/octet-stream",
        HTTP_IF_MATCH=if_match,
    )
    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["detail"]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("slice=3", 200),
        ("slice=٣", 400),
        ("slice=³", 400),
        ("slice=-1", 400),
        ("slice=8", 400),
        ("slice=" + "9" * 5000, 400),
        ("slice=%00", 400),
    ],
)
def test_slice_query(api: Any, cast: Any, query: str, status: int) -> None:
    study = make_study()
    response = api(cast.clinician).get(f"/api/studies/{study.pk}/volume/ct/?{query}")
    assert response.status_code == status
    if status == 400:
        assert response.json()["code"] == "bad_slice"


@pytest.mark.parametrize(
    "url",
    [
        "/api/studies/?search=%00",
        "/api/studies/?search=P0%0001",
        "/api/studies/?search=²",
        "/api/studies/?search=" + "9" * 5000,
        "/api/studies/?status=%00",
        "/api/audit/?event_type=%00",
        "/api/audit/?actor=%00",
        "/api/audit/?actor=²",
        "/api/audit/?study=²",
        "/api/audit/?study=" + "9" * 40,
        "/api/audit/?model_version=٣",
    ],
)
def test_text_and_id_filters(api: Any, cast: Any, url: str) -> None:
    make_study()
    response = api(cast.admin).get(url)
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert set(response.json()) >= {"detail", "code"}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        _nested(10_000),
        '{"decision": ' + _nested(100) + "}",
        '{"decision": "\\ud800"}',
        '{"\\udfff": "accepted"}',
        '{"decision": "accepted"',
        "\xff\xfe",
        "NaN",
    ],
    ids=["deep-10000", "deep-100", "lone-surrogate", "surrogate-key", "truncated", "bytes", "nan"],
)
def test_malformed_json_is_bad_json(api: Any, cast: Any, body: str) -> None:
    study = make_study()
    lesion = study.lesions.first()
    response = api(cast.clinician).patch(
        f"/api/studies/{study.pk}/lesions/{lesion.pk}/",
        data=body.encode("utf-8", "surrogatepass"),
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    parsed = json.loads(response.content)
    assert parsed["code"] in ("bad_json", "invalid") and parsed["detail"]


# (Django's refusal of a request body, status, code)
BODY_REFUSALS = [
    ("TooManyFilesSent", 400, "too_many_files"),
    ("TooManyFieldsSent", 400, "too_many_fields"),
    ("RequestDataTooBig", 413, "too_large"),
    ("SuspiciousMultipartForm", 400, "bad_multipart"),
    ("SuspiciousOperation", 400, "bad_request"),
]


@pytest.mark.parametrize(
    ("name", "status", "code"), BODY_REFUSALS, ids=[r[0] for r in BODY_REFUSALS]
)
def test_a_refused_request_body_is_a_4xx_wherever_it_is_read(
    name: str, status: int, code: str
) -> None:
    """Django raises these where the body is first read: in the view, or in a session's
    CSRF check before it. Either way the answer is ``{detail, code}``, never a 500."""
    import django.core.exceptions as dj

    from lesionloop.core.api import exception_handler

    response = exception_handler(getattr(dj, name)("refused"), {})
    assert response is not None
    assert (response.status_code, response.data["code"]) == (status, code)
    assert response.data["detail"]

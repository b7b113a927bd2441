"""The review API's request headers: ``If-Match`` (the revision an edit started from)
and ``X-Lease-Client`` (the client session, one browser tab, that holds the lease)."""

from __future__ import annotations

import re

from rest_framework.request import Request

from lesionloop.core.exceptions import DomainError

LEASE_CLIENT = re.compile(r"[A-Za-z0-9_-]{1,64}")
# ASCII digits only ("²".isdigit() is true, int("²") raises), and few of them.
REVISION = re.compile(r"[0-9]{1,9}")


def parse_if_match(value: str | None) -> int:
    """The revision number in an If-Match header: ``"3"``, ``3`` or ``W/"3"``.

    428 ``if_match_required`` when absent; 400 ``bad_if_match`` when not a number.
    """
    if not value:
        raise DomainError(
            'Send If-Match: "<revision>" with the revision the edit started from.',
            code="if_match_required",
            status_code=428,
        )
    token = value.strip()
    if token.startswith("W/"):
        token = token[2:]
    token = token.strip().strip('"')
    if not REVISION.fullmatch(token):
        raise DomainError(f"If-Match {value[:40]!r} is not a revision number.", code="bad_if_match")
    return int(token)


def lease_client(request: Request) -> str:
    """The client session (one browser tab) a write comes from: ``X-Lease-Client``.

    Absent means the user's one unnamed session (scripts). 400 ``bad_lease_client``.
    """
    value = request.headers.get("X-Lease-Client", "")
    if value and not LEASE_CLIENT.fullmatch(value):
        raise DomainError(
            "X-Lease-Client must be 1-64 letters, digits, '-' or '_'.", code="bad_lease_client"
        )
    return value

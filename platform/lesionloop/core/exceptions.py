"""Domain errors: a refused operation with a message meant for the user.

Services raise these; ``core.api.exception_handler`` turns them into the one error
shape of the API. This module imports nothing from DRF (status codes are plain ints),
so services, selectors and management commands can use it without the web stack.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refused operation with a message meant for the user (maps to 4xx)."""

    status_code = 400
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.extra = extra or {}


class Conflict(DomainError):
    """The operation clashes with the current state (HTTP 409)."""

    status_code = 409
    code = "conflict"


class ClaimLost(Exception):
    """A worker's claim on a job was taken over (the sweeper requeued the job after its
    heartbeat stopped): whatever this worker was about to commit must not be."""

"""API plumbing shared by every app: one error shape, no tracebacks for users."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .exceptions import DomainError

log = logging.getLogger(__name__)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler with one error shape: ``{"detail", "code", ...}``."""
    if isinstance(exc, DomainError):
        body = {"detail": exc.message, "code": exc.code, **exc.extra}
        return Response(body, status=exc.status_code)
    if isinstance(exc, ValidationError):
        return Response({"detail": " ".join(exc.messages), "code": "invalid"}, status=400)
    if isinstance(exc, (Http404, PermissionDenied)):
        return drf_exception_handler(exc, context)
    response = drf_exception_handler(exc, context)
    if response is None:
        log.exception("unhandled API error", exc_info=exc)
        return Response(
            {"detail": "Internal error; it has been logged.", "code": "server_error"}, status=500
        )
    return response


class FiniteFloatField(serializers.FloatField):
    """A float that is ``null`` in JSON unless finite: NaN never reaches a response."""

    def to_representation(self, value: Any) -> float | None:
        number = super().to_representation(value)
        return number if number is not None and math.isfinite(number) else None


def atomic_write(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Run a write view in one transaction with its response rendered inside it.

    A write never commits when its response fails: the body is rendered as strict JSON
    (what the client gets) before the transaction commits, so a serializer or renderer
    error (a NaN, a broken row) rolls the write back and the client gets the error.
    """

    @functools.wraps(handler)
    def wrapper(view: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        with transaction.atomic():
            response = handler(view, request, *args, **kwargs)
            if isinstance(response, Response) and response.data is not None:
                JSONRenderer().render(response.data)
        return response

    return wrapper

"""API plumbing shared by every app: one error shape, no tracebacks for users."""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousMultipartForm,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
    ValidationError,
)
from django.db import transaction
from django.http import Http404
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from .exceptions import DomainError
from .text import clean_json, clean_text

log = logging.getLogger(__name__)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler with one error shape: ``{"detail", "code", ...}``.

    The body is cleaned (``core.text.clean_json``): an error message quoting the
    request (a lone surrogate, a NUL) must not make the error itself fail to render.
    """
    response = _error_response(exc, context)
    if response is not None:
        response.data = clean_json(response.data, max_str=2000)
    return response


def _error_response(exc: Exception, context: dict[str, Any]) -> Response | None:
    # Imported here: rest_framework.views reads DEFAULT_PARSER_CLASSES (SafeJSONParser,
    # below) when it is first imported, which would be a circular import at module level.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DomainError):
        body = {"detail": exc.message, "code": exc.code, **exc.extra}
        return Response(body, status=exc.status_code)
    if isinstance(exc, SuspiciousOperation):
        detail, code, status = _request_body_refusal(exc)
        return Response({"detail": detail, "code": code}, status=status)
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
    if isinstance(response.data, dict) and "detail" in response.data:
        response.data.setdefault("code", getattr(response.data["detail"], "code", "error"))
    return response


def _request_body_refusal(exc: SuspiciousOperation) -> tuple[str, str, int]:
    """(detail, code, status) for Django's refusals of a request body, which can be
    raised wherever the body is first read (a session's CSRF check reads it before the
    view): too many files or fields, too big, a malformed multipart body."""
    if isinstance(exc, TooManyFilesSent):
        return (
            "Too many files in one request (at most "
            f"{settings.DATA_UPLOAD_MAX_NUMBER_FILES}); send the study as one zip.",
            "too_many_files",
            400,
        )
    if isinstance(exc, TooManyFieldsSent):
        return (
            f"Too many form fields (at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}).",
            "too_many_fields",
            400,
        )
    if isinstance(exc, RequestDataTooBig):
        return (
            "The request body is larger than the limit of "
            f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes for form data.",
            "too_large",
            413,
        )
    if isinstance(exc, SuspiciousMultipartForm):
        return "The multipart body is malformed.", "bad_multipart", 400
    return "The request was refused as malformed.", "bad_request", 400


_ID = re.compile(r"[0-9]{1,18}")
# Text filters longer than this are nonsense (and cost the database a scan).
QUERY_TEXT_MAX = 200


def parse_id(raw: str, *, name: str, code: str = "bad_filter") -> int:
    """An id (or other non-negative integer) from user input: ASCII digits only, at most
    18 of them (fits a bigint). ``"²"``, ``"٣"``, ``"-1"``, ``"1e3"``: 400 ``code``."""
    if not isinstance(raw, str) or not _ID.fullmatch(raw):
        raise DomainError(f"{name} must be a non-negative integer (ASCII digits).", code=code)
    return int(raw)


def query_text(request: Any, name: str) -> str | None:
    """A free-text query parameter without NUL or control characters, capped in length
    (PostgreSQL refuses NUL in a string literal). None when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    return clean_text(raw, max_len=QUERY_TEXT_MAX)


class SafeJSONParser(JSONParser):
    """DRF's JSON parser answering 400 ``bad_json`` for every malformed body.

    DRF turns ``ValueError`` into a 400, but not ``RecursionError`` (10,000 nested
    arrays) nor a lone surrogate (``"\\ud800"``), which parses but cannot be encoded
    back to UTF-8, so even the 400 about it failed to render.
    """

    max_depth = 64

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except ParseError as exc:
            raise DomainError(
                f"The body is not valid JSON ({clean_text(exc.detail, max_len=200)}).",
                code="bad_json",
            ) from None
        except (RecursionError, ValueError, UnicodeError):
            raise DomainError("The body is not valid JSON.", code="bad_json") from None
        _check_json(data, self.max_depth)
        return data


def _check_json(data: Any, max_depth: int) -> None:
    """400 ``bad_json`` for nesting deeper than ``max_depth`` or a lone surrogate."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            raise DomainError(f"The JSON body nests deeper than {max_depth}.", code="bad_json")
        if isinstance(value, str):
            if value != clean_text(value) and _has_surrogate(value):
                raise DomainError(
                    "The JSON body holds a lone surrogate (not valid Unicode).", code="bad_json"
                )
        elif isinstance(value, dict):
            stack.extend((k, depth + 1) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


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


def strict_body(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validated fields of a JSON object body, refusing what the serializer does not know.

    400 ``bad_body`` unless the body is a JSON object; 400 ``unknown_field`` (``fields``)
    for a field the serializer does not declare (a misspelt option would otherwise run
    with its default); 400 ``invalid`` (``errors``: DRF's per-field messages) otherwise.
    """
    if not hasattr(data, "keys"):
        raise DomainError("The body must be a JSON object.", code="bad_body")
    serializer = serializer_class(data=data)
    unknown = sorted(set(data.keys()) - set(serializer.fields))
    if unknown:
        raise DomainError(
            f"Unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
            f"Known fields: {', '.join(serializer.fields) or 'none'}.",
            code="unknown_field",
            extra={"fields": unknown},
        )
    if not serializer.is_valid():
        messages = "; ".join(
            f"{name}: {' '.join(str(m) for m in errors)}"
            for name, errors in serializer.errors.items()
        )
        raise DomainError(
            f"Invalid body ({messages}).", code="invalid", extra={"errors": serializer.errors}
        )
    return dict(serializer.validated_data)

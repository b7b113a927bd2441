"""The one write of the audit trail: ``audit_record``. Every app records through it."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Model

from lesionloop.core.text import clean_json, clean_text

from .models import AuditEvent


def _jsonable(payload: dict[str, Any]) -> dict[str, Any]:
    # Round-trip through the encoder so dates, Decimals, Paths and UUIDs are stored as text;
    # then clean it: jsonb refuses NUL, lone surrogates and NaN (core.text).
    return clean_json(json.loads(json.dumps(payload, cls=DjangoJSONEncoder, default=str)))


def audit_record(
    *,
    event_type: str,
    actor: User | AnonymousUser | None = None,
    study: Model | int | None = None,
    model_version: Model | int | None = None,
    actor_label: str | None = None,
    **payload: Any,
) -> AuditEvent:
    """Append one event. ``actor`` is a user (or None for the system/model).

    ``study`` and ``model_version`` take instances or ids. Everything else goes into
    the JSON payload. Never update or delete events: PostgreSQL refuses it.
    """
    user = actor if getattr(actor, "is_authenticated", False) else None
    if actor_label is None:
        actor_label = user.get_username() if user is not None else ""
    return AuditEvent.objects.create(
        event_type=event_type,
        actor=user,
        actor_label=clean_text(actor_label, max_len=150),
        study_id=getattr(study, "pk", study),
        model_version_id=getattr(model_version, "pk", model_version),
        payload=_jsonable(payload),
    )

"""Reads of the audit trail."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import AuditEvent


def audit_events(
    *,
    study_id: int | None = None,
    model_version_id: int | None = None,
    event_type: str | None = None,
    actor: str | None = None,
    newest_first: bool = False,
) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.select_related("actor", "study", "model_version")
    if study_id is not None:
        qs = qs.filter(study_id=study_id)
    if model_version_id is not None:
        qs = qs.filter(model_version_id=model_version_id)
    if event_type:
        qs = qs.filter(event_type=event_type)
    if actor:
        is_id = actor.isascii() and actor.isdigit() and len(actor) <= 18
        qs = qs.filter(actor_id=int(actor)) if is_id else qs.filter(actor_label=actor)
    if newest_first:
        return qs.order_by("-created_at", "-id")
    return qs.order_by("created_at", "id")


def study_timeline(*, study_id: int) -> QuerySet[AuditEvent]:
    return audit_events(study_id=study_id)

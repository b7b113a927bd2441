from __future__ import annotations

from typing import Any

from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only (the database refuses changes anyway)."""

    list_display = ("created_at", "event_type", "actor_label", "study", "model_version")
    list_filter = ("event_type",)
    search_fields = ("actor_label", "event_type")
    list_select_related = ("study", "model_version")
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

from __future__ import annotations

from typing import Any

from django.contrib import admin

from .models import Approval, Lesion, MaskRevision


@admin.register(Lesion)
class LesionAdmin(admin.ModelAdmin):
    list_display = ("id", "study", "label", "volume_mm3", "decision", "decided_by", "model_version")
    list_filter = ("decision",)
    raw_id_fields = ("study", "decided_by", "model_version")


@admin.register(MaskRevision)
class MaskRevisionAdmin(admin.ModelAdmin):
    """Revisions are history: viewable, never edited here."""

    list_display = ("id", "study", "number", "author_label", "reason", "created_at")
    readonly_fields = [f.name for f in MaskRevision._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin):
    list_display = ("id", "study", "approved_by", "approved_at", "training_eligible", "superseded")
    readonly_fields = [f.name for f in Approval._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False

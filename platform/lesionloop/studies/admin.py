from __future__ import annotations

from django.contrib import admin

from .models import Job, Prediction, Study


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "patient_label",
        "status",
        "priority",
        "lesion_count",
        "smallest_lesion_mm3",
        "registration_ok",
        "model_version",
        "created_at",
    )
    list_filter = ("status", "registration_ok", "training_eligible")
    search_fields = ("patient_label", "description")
    list_select_related = ("model_version",)
    raw_id_fields = ("created_by", "lease_user", "approved_by", "model_version")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "study", "model_version", "state", "attempts", "created_at")
    list_filter = ("kind", "state")
    raw_id_fields = ("study", "model_version")


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("id", "study", "model_version", "priority", "seconds", "created_at")
    raw_id_fields = ("study", "model_version")

from __future__ import annotations

from django.contrib import admin

from .models import DicomSend, ReceivedStudy, RemoteNode, Retrieve


@admin.register(RemoteNode)
class RemoteNodeAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "ae_title",
        "host",
        "port",
        "can_query",
        "can_store",
        "send_on_approval",
        "enabled",
    )
    list_filter = ("enabled", "can_query", "can_store", "send_on_approval")


@admin.register(ReceivedStudy)
class ReceivedStudyAdmin(admin.ModelAdmin):
    list_display = (
        "study_instance_uid",
        "calling_ae",
        "status",
        "object_count",
        "bytes",
        "last_arrival",
        "study",
    )
    list_filter = ("status",)
    readonly_fields = [f.name for f in ReceivedStudy._meta.fields]


@admin.register(Retrieve)
class RetrieveAdmin(admin.ModelAdmin):
    list_display = ("id", "node", "patient_id", "accession_number", "status", "created_at")
    list_filter = ("status",)


@admin.register(DicomSend)
class DicomSendAdmin(admin.ModelAdmin):
    list_display = ("id", "study", "node", "format", "revision", "status", "attempts", "updated_at")
    list_filter = ("status", "format")

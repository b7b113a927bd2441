from __future__ import annotations

from rest_framework import serializers

from lesionloop.studies.api.serializers import ModelVersionRefSerializer

from ..models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)
    model_version = ModelVersionRefSerializer(allow_null=True, read_only=True)
    payload = serializers.JSONField(read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "event_type", "study", "model_version", "payload"]
        read_only_fields = fields

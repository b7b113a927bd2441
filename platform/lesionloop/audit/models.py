"""The audit trail: append-only events, refused UPDATE/DELETE at the database level."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # The username at the time (or the model / system that acted); survives renames
    # and names the attempted user of a failed login.
    actor_label = models.CharField(max_length=150, blank=True)
    event_type = models.CharField(max_length=64, db_index=True)
    study = models.ForeignKey(
        "studies.Study",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
    )
    model_version = models.ForeignKey(
        "registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
    )
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["study", "created_at"], name="audit_study_time"),
            models.Index(fields=["model_version", "created_at"], name="audit_model_time"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.event_type} by {self.actor_label or '-'}"

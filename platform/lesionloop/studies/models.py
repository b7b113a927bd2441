"""Studies (an uploaded CT + contrast-T1 MR), their jobs and their predictions."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone


class Study(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSING = "processing"
        AWAITING_MODEL = "awaiting_model"
        READY = "ready"
        IN_REVIEW = "in_review"
        APPROVED = "approved"
        FAILED = "failed"

    patient_label = models.CharField(max_length=128, blank=True)
    description = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True
    )
    status_reason = models.TextField(blank=True)
    source = models.CharField(max_length=16, default="upload")  # upload | import
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Filled by ingest from the prepared study's study.json.
    prepared = models.BooleanField(default=False)
    grid = models.JSONField(default=dict, blank=True)
    report = models.JSONField(default=dict, blank=True)
    dicom = models.JSONField(default=dict, blank=True)
    registration = models.JSONField(default=dict, blank=True)
    registration_ok = models.BooleanField(null=True, blank=True)

    # Denormalised from the current prediction/lesions so the worklist is one query.
    model_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    priority = models.FloatField(default=0.0)
    lesion_count = models.PositiveIntegerField(default=0)
    smallest_lesion_mm3 = models.FloatField(null=True, blank=True)
    revision_number = models.PositiveIntegerField(default=0)

    # The review lease: whoever opened the study last and keeps renewing it.
    lease_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The client session (one browser tab, or one script) holding the lease: another tab
    # of the same user is another editor. Empty for clients that send no X-Lease-Client.
    lease_client = models.CharField(max_length=64, blank=True, default="")

    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    training_eligible = models.BooleanField(default=False)

    class Meta:
        ordering = ["-priority", "id"]
        verbose_name_plural = "studies"
        indexes = [
            models.Index(fields=["-priority", "id"], name="study_priority"),
            models.Index(fields=["smallest_lesion_mm3", "id"], name="study_smallest"),
            models.Index(fields=["lesion_count", "id"], name="study_lesion_count"),
            models.Index(fields=["status", "id"], name="study_status"),
        ]

    def __str__(self) -> str:
        return f"Study {self.pk} {self.patient_label} ({self.status})"

    def lease_live(self, now: datetime | None = None) -> bool:
        """Whether someone holds an unexpired review lease on the study."""
        return (
            self.lease_user_id is not None
            and self.lease_expires_at is not None
            and self.lease_expires_at > (now or timezone.now())
        )


class Job(models.Model):
    """One unit of background work on a study; claimed atomically by a worker."""

    class Kind(models.TextChoices):
        INGEST = "ingest"
        PRESEGMENT = "presegment"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    model_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.QUEUED, db_index=True
    )
    # Claims so far; also the fencing token: only the worker holding the current
    # attempt may beat or finish the job (a requeued job's old worker cannot).
    attempts = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Written every few seconds by the running worker (``core.heartbeat``).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The last message sent for the job, and when ("" = the broker did not take it).
    message_id = models.CharField(max_length=64, blank=True, default="")
    enqueued_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} for study {self.study_id} ({self.state})"


class Prediction(models.Model):
    """What one model version proposed for one study; never overwritten."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="predictions"
    )
    directory = models.CharField(max_length=255)  # relative to STORAGE_ROOT
    lesions = models.JSONField(default=list, blank=True)
    priority = models.FloatField(default=0.0)
    seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "model_version"], name="one_prediction_per_model"
            )
        ]

    def __str__(self) -> str:
        return f"Prediction of study {self.study_id} by model {self.model_version_id}"

"""DICOM network: remote nodes, studies received by the listener, retrieves and sends."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RemoteNode(models.Model):
    """A DICOM peer: a PACS we query and retrieve from, or a TPS we send contours to."""

    name = models.CharField(max_length=64, unique=True)
    ae_title = models.CharField(max_length=16)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    can_query = models.BooleanField(default=False)
    can_store = models.BooleanField(default=False)
    send_on_approval = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.ae_title}@{self.host}:{self.port})"


class ReceivedStudy(models.Model):
    """Objects of one StudyInstanceUID received by the listener, staged until quiet."""

    class Status(models.TextChoices):
        RECEIVING = "receiving"
        INGESTING = "ingesting"
        DONE = "done"
        FAILED = "failed"

    study_instance_uid = models.CharField(max_length=64, unique=True)
    patient_id = models.CharField(max_length=64, blank=True, db_index=True)
    calling_ae = models.CharField(max_length=16, blank=True)
    first_arrival = models.DateTimeField()
    last_arrival = models.DateTimeField(db_index=True)
    object_count = models.PositiveIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RECEIVING, db_index=True
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    completions = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    study = models.ForeignKey(
        "studies.Study", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-last_arrival"]
        verbose_name_plural = "received studies"

    def __str__(self) -> str:
        return f"Received {self.study_instance_uid} ({self.status}, {self.object_count} objects)"


class Retrieve(models.Model):
    """One "fetch from PACS" request: C-FIND on a node, then C-MOVE of each study to us."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    node = models.ForeignKey(RemoteNode, on_delete=models.PROTECT, related_name="retrieves")
    patient_id = models.CharField(max_length=64, blank=True)
    accession_number = models.CharField(max_length=16, blank=True)
    study_instance_uid = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    studies = models.JSONField(default=list, blank=True)  # [{study_instance_uid, status, ...}]
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Retrieve {self.pk} from {self.node_id} ({self.status})"


class DicomSend(models.Model):
    """One format of one approved revision pushed to one node, over one or more attempts."""

    class Format(models.TextChoices):
        RTSTRUCT = "rtstruct"
        SEG = "seg"

    class Status(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    node = models.ForeignKey(RemoteNode, on_delete=models.PROTECT, related_name="sends")
    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="+")
    revision = models.PositiveIntegerField()
    format = models.CharField(max_length=16, choices=Format.choices)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    sop_instance_uids = models.JSONField(default=list, blank=True)
    remote_status = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    automatic = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Send {self.pk} of study {self.study_id} {self.format} ({self.status})"

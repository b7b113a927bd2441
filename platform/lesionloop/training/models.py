"""Training runs of the ensemble and the fixed validation split."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.expressions import Value


class TrainingRun(models.Model):
    """One retraining attempt, from request to a candidate version (or failure).

    The row is the job: the actor claims it with a conditional update from
    ``queued`` to ``running``, and the subprocess's progress lands here live.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Trigger(models.TextChoices):
        MANUAL = "manual"
        AUTO = "auto"
        DEMO = "demo"

    OPEN_STATUSES = (Status.QUEUED, Status.RUNNING)

    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    model_version = models.OneToOneField(
        "registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="training_run",
    )
    # Overrides of the grid's default training config (EnsembleTrainConfig fields).
    overrides = models.JSONField(default=dict, blank=True)
    # Training-eligible approved studies that existed when the run was requested
    # (the auto-start counts new approvals from here).
    eligible_count = models.PositiveIntegerField(default=0)

    stage = models.CharField(max_length=32, blank=True)
    epoch = models.PositiveIntegerField(default=0)
    epochs = models.PositiveIntegerField(default=0)
    step = models.PositiveIntegerField(default=0)
    steps = models.PositiveIntegerField(default=0)
    progress = models.FloatField(default=0.0)
    losses = models.JSONField(default=list, blank=True)  # [{"stage", "epoch", "loss"}]
    val = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True)

    cancel_requested = models.BooleanField(default=False)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    pid = models.IntegerField(null=True, blank=True)
    # Claims so far, and the fencing token of the current one (see studies.Job).
    attempts = models.PositiveIntegerField(default=0)
    # The last message sent for the run, and when ("" = the broker did not take it).
    message_id = models.CharField(max_length=64, blank=True, default="")
    enqueued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One training at a time, enforced by the database: every open run
            # indexes the same constant, so a second one cannot be inserted.
            models.UniqueConstraint(
                Value(1),
                condition=models.Q(status__in=["queued", "running"]),
                name="one_open_training_run",
            )
        ]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class SplitAssignment(models.Model):
    """Which split a study belongs to, decided once and never changed.

    Validation studies are never trained on (they pick each run's best epoch and
    operating point); gate studies are neither trained on nor calibrated on: every
    compared version is scored on them (docs/MODELS.md, "The split and the gate set").
    """

    class Split(models.TextChoices):
        TRAIN = "train"
        VALIDATION = "validation"
        GATE = "gate"

    # A plain id (not a foreign key) keeps the split independent of the
    # studies app's tables; studies are never deleted while referenced here.
    study_id = models.BigIntegerField(unique=True)
    study_key = models.CharField(max_length=128)  # what the hash was taken of
    split = models.CharField(max_length=16, choices=Split.choices)
    # The study's size stratum (the group of its smallest lesion, ml.metrics.lesionwise)
    # when the stratified rule assigned it; blank for the earlier hash rule's rows.
    stratum = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study_id"]

    def __str__(self) -> str:
        return f"study {self.study_id}: {self.split}"

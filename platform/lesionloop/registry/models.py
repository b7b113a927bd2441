"""The model registry: every version of the ensemble, never overwritten."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        TRAINING = "training"
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"
        FAILED = "failed"
        CANCELLED = "cancelled"  # its training run was cancelled by an admin

    name = models.CharField(max_length=64, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.TRAINING, db_index=True
    )
    preset = models.CharField(max_length=16)
    # Relative to STORAGE_ROOT; holds unet.pt, deepmedic.pt, manifest.json.
    weights_dir = models.CharField(max_length=255, blank=True)
    weights = models.JSONField(default=list, blank=True)  # [{"file": ..., "sha256": ...}]
    train_study_ids = models.JSONField(default=list, blank=True)
    val_study_ids = models.JSONField(default=list, blank=True)
    hyperparameters = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    code_version = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    promotion_note = models.TextField(blank=True)
    # Why a version failed or was retired, in words an admin can act on.
    status_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="active"),
                name="one_active_model_version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class GateSetVersion(models.Model):
    """One version of the site's gate set: approved studies held out from training and
    from operating-point calibration, on which every compared version is scored.

    Versions only grow (each holds every member of the one before; docs/MODELS.md,
    "The gate set"). ``members``: ``[{"study_id", "snapshot_dir", "stratum",
    "n_lesions"}]``, the approved snapshot each member is scored on, pinned.
    """

    number = models.PositiveIntegerField(unique=True)
    members = models.JSONField(default=list)
    n_studies = models.PositiveIntegerField(default=0)
    n_lesions = models.PositiveIntegerField(default=0)
    strata = models.JSONField(default=dict, blank=True)  # {stratum: n studies}
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"gate set v{self.number} ({self.n_studies} studies)"

    @property
    def study_ids(self) -> list[int]:
        return [int(m["study_id"]) for m in self.members]


class GateScore(models.Model):
    """A version's score on one gate set version; the row is the scoring job (claimed
    with a conditional update), so asking twice never scores twice."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="gate_scores"
    )
    gate_set = models.ForeignKey(GateSetVersion, on_delete=models.PROTECT, related_name="scores")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    metrics = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-gate_set__number", "model_version_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "gate_set"], name="one_gate_score_per_version_and_set"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_version_id} on gate set {self.gate_set_id} ({self.status})"

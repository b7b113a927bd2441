"""Review: the lesions of a study, the working mask's revisions, approvals."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Lesion(models.Model):
    class Decision(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        REJECTED = "rejected"
        EDITED = "edited"
        ADDED = "added"

    class ContourSource(models.TextChoices):
        """Where the lesion's contour comes from (its decision, once kept, follows it)."""

        MODEL = "model"  # as the model proposed it -> kept as "accepted"
        EDITED = "edited"  # the model's contour changed by a clinician -> "edited"
        DRAWN = "drawn"  # drawn by a clinician -> "added"
        IMPORTED = "imported"  # ground truth imported with the study -> "accepted"

    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="lesions")
    label = models.PositiveIntegerField()
    volume_vox = models.PositiveIntegerField(default=0)
    volume_mm3 = models.FloatField()
    centroid_vox = models.JSONField(default=list)
    centroid_mm = models.JSONField(default=list)
    bbox = models.JSONField(default=list)
    largest_slice = models.PositiveIntegerField(default=0)
    # ml.lesions.diameters (voxel centres, mm); null until measured: rows saved before
    # measurements existed get them from `manage.py measure_lesions` or their next edit.
    longest_axial_diameter_mm = models.FloatField(null=True, blank=True)
    longest_diameter_mm = models.FloatField(null=True, blank=True)
    mean_prob = models.FloatField(null=True, blank=True)
    max_prob = models.FloatField(null=True, blank=True)
    disagreement = models.FloatField(null=True, blank=True)
    model_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=16, choices=Decision.choices, default=Decision.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    contour_source = models.CharField(
        max_length=16, choices=ContourSource.choices, default=ContourSource.MODEL
    )

    class Meta:
        ordering = ["volume_mm3", "id"]
        indexes = [models.Index(fields=["study", "volume_mm3", "id"], name="lesion_study_volume")]
        constraints = [
            models.UniqueConstraint(fields=["study", "label"], name="one_lesion_per_label")
        ]

    def __str__(self) -> str:
        return f"Lesion {self.label} of study {self.study_id} ({self.decision})"

    @property
    def kept_decision(self) -> str:
        """The decision this lesion takes when the clinician keeps it."""
        return KEPT_AS[self.contour_source]


KEPT_AS = {
    Lesion.ContourSource.MODEL: Lesion.Decision.ACCEPTED,
    Lesion.ContourSource.IMPORTED: Lesion.Decision.ACCEPTED,
    Lesion.ContourSource.EDITED: Lesion.Decision.EDITED,
    Lesion.ContourSource.DRAWN: Lesion.Decision.ADDED,
}


class MaskRevision(models.Model):
    """One saved state of the working label mask; the file is never rewritten."""

    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    file = models.CharField(max_length=255)  # relative to STORAGE_ROOT; raw uint16, gzip
    sha256 = models.CharField(max_length=64)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    author_label = models.CharField(max_length=150)  # username, or "model <name>"
    model_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "number"]
        constraints = [
            models.UniqueConstraint(fields=["study", "number"], name="one_revision_number")
        ]

    def __str__(self) -> str:
        return f"Revision {self.number} of study {self.study_id}"

    @property
    def etag(self) -> str:
        return f'"{self.number}"'


class Approval(models.Model):
    """An approval of a study at one revision, with its frozen training snapshot."""

    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="approvals")
    revision = models.ForeignKey(MaskRevision, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(auto_now_add=True)
    training_eligible = models.BooleanField(default=True)
    # Relative to STORAGE_ROOT: a complete prepared-study dir plus ground_truth.npy.
    snapshot_dir = models.CharField(max_length=255, blank=True)
    lesion_labels = models.JSONField(default=list, blank=True)
    superseded = models.BooleanField(default=False)  # set on reopen

    class Meta:
        ordering = ["approved_at", "id"]

    def __str__(self) -> str:
        return f"Approval {self.pk} of study {self.study_id}"


class ReviewActivity(models.Model):
    """Active review time of a study's current review, counted from lease renewals.

    A renewal (or a decision, or a save) by the lease holder that reports user activity
    adds the time since that client's previous one, capped per gap
    (``LESIONLOOP_REVIEW_GAP_CAP_SECONDS``), so an idle tab or a lunch break adds
    nothing. Reset when the study is approved (the time moves to its ``ReviewEffort``).
    """

    study = models.OneToOneField(
        "studies.Study", on_delete=models.CASCADE, related_name="review_activity"
    )
    active_seconds = models.FloatField(default=0.0)
    last_beat_at = models.DateTimeField(null=True, blank=True)
    last_client = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"review activity of study {self.study_id}: {self.active_seconds:.0f} s"


class ReviewEffort(models.Model):
    """What the clinician had to do with the model's pre-contour, computed at approval
    (``ml.metrics.review_effort``); one per approval of a pre-segmented study."""

    approval = models.OneToOneField(Approval, on_delete=models.CASCADE, related_name="effort")
    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="+")
    # The version whose pre-contour was reviewed.
    model_version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="review_efforts"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    model_lesions = models.PositiveIntegerField(default=0)
    accepted_unchanged = models.PositiveIntegerField(default=0)
    edited = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    voxels_added = models.PositiveIntegerField(default=0)
    voxels_removed = models.PositiveIntegerField(default=0)
    edited_voxels = models.PositiveIntegerField(default=0)
    active_seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"review effort of approval {self.approval_id}"

    @property
    def accepted_unchanged_fraction(self) -> float | None:
        return None if not self.model_lesions else self.accepted_unchanged / self.model_lesions


class Ruler(models.Model):
    """A distance measured on one slice of one plane (the viewer's ruler, key D), kept
    with the study for the user who drew it: their measurements are there when they
    open the case again, whatever revision the contour is at (a ruler measures the
    image, not the mask). One per user and plane, as the viewer draws them; saving a
    new one in a plane replaces it. Points are image pixel coordinates of that plane
    (fractions allowed; coronal / sagittal rows are superior first, planes.js)."""

    class Plane(models.TextChoices):
        AXIAL = "axial"
        CORONAL = "coronal"
        SAGITTAL = "sagittal"

    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="rulers")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    plane = models.CharField(max_length=16, choices=Plane.choices)
    slice_index = models.PositiveIntegerField()
    a_row = models.FloatField()
    a_col = models.FloatField()
    b_row = models.FloatField()
    b_col = models.FloatField()
    length_mm = models.FloatField()  # from the study's grid spacing, on the server
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "user", "plane"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "user", "plane"], name="one_ruler_per_user_and_plane"
            )
        ]

    def __str__(self) -> str:
        return f"Ruler {self.length_mm:.1f} mm on {self.plane} {self.slice_index} of study {self.study_id}"

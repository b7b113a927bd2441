"""Input and output shapes of the studies API (docs/API.md)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Study


class ModelVersionRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class LeaseSerializer(serializers.Serializer):
    user = serializers.CharField()
    expires_at = serializers.DateTimeField()


def lease_of(study: Study) -> dict[str, Any] | None:
    if not study.lease_live():
        return None
    return {"user": study.lease_user.get_username(), "expires_at": study.lease_expires_at}


@extend_schema_field(
    {"type": "string", "description": "One of: " + ", ".join(Study.Status.values) + "."}
)
class StudyStatusField(serializers.CharField):
    """A plain string in the schema: other apps' components have enums named ``status``
    too, and drf-spectacular warns about the name collision."""


class StudyRowSerializer(serializers.ModelSerializer):
    status = StudyStatusField(read_only=True)
    model_version = ModelVersionRefSerializer(allow_null=True, read_only=True)
    lease = serializers.SerializerMethodField()
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    registration_message = serializers.SerializerMethodField()

    class Meta:
        model = Study
        fields = [
            "id",
            "patient_label",
            "description",
            "status",
            "status_reason",
            "priority",
            "lesion_count",
            "smallest_lesion_mm3",
            "model_version",
            "lease",
            "registration_ok",
            "registration_message",
            "created_at",
            "updated_at",
            "approved_at",
            "approved_by",
        ]
        read_only_fields = fields

    def get_registration_message(self, study: Study) -> str:
        """Why registration was flagged (empty when it is fine or not done yet)."""
        if study.registration_ok is not False:
            return ""
        return str((study.registration or {}).get("message", ""))

    @extend_schema_field(LeaseSerializer(allow_null=True))
    def get_lease(self, study: Study) -> dict[str, Any] | None:
        data = lease_of(study)
        return LeaseSerializer(data).data if data else None

    def to_representation(self, instance: Study) -> dict[str, Any]:
        """The row built field by field without DRF's generic walk (the worklist writes 50
        rows per request; the walk was most of its CPU). Same output as the declared
        fields: ``generic_representation`` is that walk, and a test compares the two."""
        study = instance
        when = self.fields["created_at"].to_representation
        mv = study.model_version
        return {
            "id": study.pk,
            "patient_label": study.patient_label,
            "description": study.description,
            "status": study.status,
            "status_reason": study.status_reason,
            "priority": float(study.priority),
            "lesion_count": int(study.lesion_count),
            "smallest_lesion_mm3": _float_or_none(study.smallest_lesion_mm3),
            "model_version": None if mv is None else {"id": mv.pk, "name": mv.name},
            "lease": self.get_lease(study),
            "registration_ok": study.registration_ok,
            "registration_message": self.get_registration_message(study),
            "created_at": when(study.created_at),
            "updated_at": when(study.updated_at),
            "approved_at": None if study.approved_at is None else when(study.approved_at),
            "approved_by": None if study.approved_by is None else study.approved_by.username,
        }

    def generic_representation(self, instance: Study) -> dict[str, Any]:
        """DRF's walk over the declared fields."""
        return super().to_representation(instance)


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


class GridSerializer(serializers.Serializer):
    shape_dhw = serializers.ListField(child=serializers.IntegerField())
    spacing_mm = serializers.ListField(child=serializers.FloatField())
    origin_xyz_mm = serializers.ListField(child=serializers.FloatField())
    # Nine values, row-major, column j = image axis j (x, y, z) in patient LPS; the viewer
    # puts its orientation letters and patient coordinates on it.
    direction = serializers.ListField(child=serializers.FloatField())
    preset = serializers.CharField(allow_null=True)


class RevisionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    etag = serializers.CharField()
    author = serializers.CharField(source="author_label")
    created_at = serializers.DateTimeField()
    reason = serializers.CharField()


class StudyDetailSerializer(StudyRowSerializer):
    grid = serializers.SerializerMethodField()
    revision = serializers.SerializerMethodField()
    report = serializers.JSONField(read_only=True)
    registration = serializers.JSONField(read_only=True)

    class Meta(StudyRowSerializer.Meta):
        fields = [
            *StudyRowSerializer.Meta.fields,
            "grid",
            "revision",
            "training_eligible",
            "report",
            "registration",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Study) -> dict[str, Any]:
        """One study per request: DRF's walk over every declared field."""
        return self.generic_representation(instance)

    @extend_schema_field(GridSerializer(allow_null=True))
    def get_grid(self, study: Study) -> dict[str, Any] | None:
        if not study.grid:
            return None
        g = study.grid
        return {
            "shape_dhw": g.get("shape_dhw", []),
            "spacing_mm": g.get("spacing_mm", []),
            "origin_xyz_mm": g.get("origin_xyz_mm", []),
            "direction": g.get("direction", []),
            "preset": g.get("preset"),
        }

    @extend_schema_field(RevisionSerializer(allow_null=True))
    def get_revision(self, study: Study) -> dict[str, Any] | None:
        from lesionloop.review.selectors import revision_current

        revision = revision_current(study_id=study.pk, number=study.revision_number)
        return RevisionSerializer(revision).data if revision else None


class StudyUploadSerializer(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=False),
        help_text="One or more DICOM files, or one zip of them.",
    )
    ground_truth = serializers.FileField(
        required=False, help_text="NIfTI lesion mask on the CT grid (admins only)."
    )

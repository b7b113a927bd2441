from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from lesionloop.registry.models import ModelVersion


class VersionRefSerializer(serializers.ModelSerializer):
    # Plain text here: the enum is documented once, on ModelVersion.
    status = serializers.CharField(read_only=True)

    class Meta:
        model = ModelVersion
        fields = ["id", "name", "status"]


class WeightsFileSerializer(serializers.Serializer):
    file = serializers.CharField()
    sha256 = serializers.CharField()


class ModelVersionSerializer(serializers.ModelSerializer):
    """A version. ``gate``: its score on the current gate set (``comparable``: true), or
    its newest score on an earlier set (``comparable``: false, ``pending``: the state of
    its job on the current one); null before any gate set exists."""

    parent = VersionRefSerializer(read_only=True)
    gate = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    promoted_by = serializers.SerializerMethodField()
    weights = WeightsFileSerializer(many=True, read_only=True)
    metrics = serializers.JSONField(read_only=True)
    hyperparameters = serializers.JSONField(read_only=True)
    train_study_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    val_study_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "parent",
            "status",
            "status_reason",
            "preset",
            "metrics",
            "created_at",
            "created_by",
            "promoted_at",
            "promoted_by",
            "promotion_note",
            "train_study_ids",
            "val_study_ids",
            "weights",
            "code_version",
            "hyperparameters",
            "gate",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.JSONField(allow_null=True))
    def get_gate(self, obj: ModelVersion) -> dict | None:
        from lesionloop.registry.selectors import gate_set_current, gate_summary

        if "gate_set_current" not in self.context:
            self.context["gate_set_current"] = gate_set_current()
        return gate_summary(obj, self.context["gate_set_current"])

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_created_by(self, obj: ModelVersion) -> str | None:
        return obj.created_by.get_username() if obj.created_by else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_promoted_by(self, obj: ModelVersion) -> str | None:
        return obj.promoted_by.get_username() if obj.promoted_by else None


class PromoteInputSerializer(serializers.Serializer):
    override_reason = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, default=""
    )


class RollbackInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class LineageStudySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    patient_label = serializers.CharField(allow_null=True)
    status = serializers.CharField()


class PresegmentedStudySerializer(LineageStudySerializer):
    predicted_at = serializers.DateTimeField()
    lesion_count = serializers.IntegerField()


class LineageSerializer(serializers.Serializer):
    version = ModelVersionSerializer()
    parents = VersionRefSerializer(many=True, help_text="nearest parent first, root last")
    trained_on = LineageStudySerializer(many=True)
    validated_on = LineageStudySerializer(many=True)
    presegmented = PresegmentedStudySerializer(many=True)


def validated(serializer_class: type[serializers.Serializer], data: object) -> dict:
    """Validate input; bad input is a 400 in the house error shape ``{detail, code, errors}``."""
    from lesionloop.core.exceptions import DomainError

    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        errors = serializer.errors
        first = next(iter(errors.items()), ("", ["invalid input"]))
        raise DomainError(
            f"{first[0]}: {' '.join(map(str, first[1]))}", code="invalid", extra={"errors": errors}
        )
    return dict(serializer.validated_data)


class GateSetSerializer(serializers.Serializer):
    """The current gate set version: the studies every compared version is scored on."""

    number = serializers.IntegerField()
    n_studies = serializers.IntegerField()
    n_lesions = serializers.IntegerField()
    strata = serializers.DictField(child=serializers.IntegerField())
    study_ids = serializers.ListField(child=serializers.IntegerField())
    created_at = serializers.DateTimeField()
    label = serializers.SerializerMethodField()

    def get_label(self, obj: object) -> str:
        return f"gate set v{obj.number} ({obj.n_studies} studies, {obj.n_lesions} lesions)"  # type: ignore[attr-defined]


class CurrentGateSetSerializer(serializers.Serializer):
    current = GateSetSerializer(allow_null=True)

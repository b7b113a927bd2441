from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from lesionloop.registry.api.serializers import VersionRefSerializer
from lesionloop.training.models import TrainingRun


class LossPointSerializer(serializers.Serializer):
    stage = serializers.CharField()
    epoch = serializers.IntegerField()
    loss = serializers.FloatField(allow_null=True)


class TrainingRunSerializer(serializers.ModelSerializer):
    model_version = VersionRefSerializer(read_only=True, allow_null=True)
    started_by = serializers.SerializerMethodField()
    cancelled_by = serializers.SerializerMethodField()
    losses = LossPointSerializer(many=True, read_only=True)
    val = serializers.JSONField(read_only=True, allow_null=True)
    overrides = serializers.JSONField(read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "status",
            "trigger",
            "stage",
            "epoch",
            "epochs",
            "step",
            "steps",
            "progress",
            "losses",
            "val",
            "model_version",
            "message",
            "started_by",
            "cancel_requested",
            "cancelled_by",
            "overrides",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_started_by(self, obj: TrainingRun) -> str | None:
        return obj.started_by.get_username() if obj.started_by else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_cancelled_by(self, obj: TrainingRun) -> str | None:
        return obj.cancelled_by.get_username() if obj.cancelled_by else None


class TrainingRunStartSerializer(serializers.Serializer):
    """The body of ``POST /api/training-runs/``: ``{}`` or ``{"hyperparameters": {...}}``.
    Any other field is refused (400 ``unknown_field``): a misspelt option must not run
    the defaults silently."""

    hyperparameters = serializers.JSONField(
        required=False,
        default=dict,
        help_text=(
            "Optional overrides of the grid's training config, each within bounds "
            "(400 hyperparameter_out_of_range outside): seed, max_minutes, "
            "unet.{epochs, steps_per_epoch, batch_size, lr, loss}, "
            "deepmedic.{epochs, segments_per_epoch, batch_size, lr} "
            "(training/config.py OVERRIDABLE)."
        ),
    )

    def validate_hyperparameters(self, value: object) -> object:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be an object.")
        return value


class TrainingEstimateSerializer(serializers.Serializer):
    grid = serializers.CharField()
    eligible_studies = serializers.IntegerField()
    budget_minutes = serializers.FloatField(help_text="Training stops gracefully here.")
    limit_minutes = serializers.FloatField(help_text="The supervisor's hard limit.")
    expected_minutes = serializers.FloatField(help_text="Expected wall time of the whole run.")
    recent_minutes = serializers.ListField(
        child=serializers.FloatField(), help_text="Wall minutes of the last successful runs."
    )
    basis = serializers.CharField(help_text="How expected_minutes was made.")

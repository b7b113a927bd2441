"""Input and output shapes of the review API (docs/API.md)."""

from __future__ import annotations

from rest_framework import serializers

from lesionloop.core.api import FiniteFloatField
from lesionloop.studies.api.serializers import ModelVersionRefSerializer, RevisionSerializer

from ..models import Lesion


class LesionSerializer(serializers.ModelSerializer):
    model_version = ModelVersionRefSerializer(allow_null=True, read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    centroid_vox = serializers.ListField(child=FiniteFloatField(), read_only=True)
    centroid_mm = serializers.ListField(child=FiniteFloatField(), read_only=True)
    volume_mm3 = FiniteFloatField(read_only=True)
    mean_prob = FiniteFloatField(read_only=True, allow_null=True)
    max_prob = FiniteFloatField(read_only=True, allow_null=True)
    disagreement = FiniteFloatField(read_only=True, allow_null=True)
    bbox = serializers.ListField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = Lesion
        fields = [
            "id",
            "label",
            "volume_mm3",
            "centroid_vox",
            "centroid_mm",
            "bbox",
            "largest_slice",
            "mean_prob",
            "max_prob",
            "disagreement",
            "model_version",
            "decision",
            "decided_by",
            "decided_at",
            "contour_source",
        ]
        read_only_fields = fields


class LesionDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["accepted", "rejected", "pending"])


class LeaseTakeSerializer(serializers.Serializer):
    take_over = serializers.BooleanField(
        default=False,
        help_text="Move your own lease from another tab or window to this one.",
    )
    active = serializers.BooleanField(
        default=False,
        help_text="The user did something in this tab since its previous renewal: the "
        "time since then counts as active review time (capped per gap).",
    )


class LeaseStateSerializer(serializers.Serializer):
    """Who holds the review lease, as seen from one client session (tab)."""

    user = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    mine = serializers.BooleanField(help_text="This client session holds the lease.")
    yours = serializers.BooleanField(
        help_text="The lease is held by you, in this or another tab or window."
    )
    status = serializers.CharField()
    revision = serializers.IntegerField()


class MaskSavedSerializer(serializers.Serializer):
    revision = RevisionSerializer()
    lesions = LesionSerializer(many=True)


class ApproveSerializer(serializers.Serializer):
    training_eligible = serializers.BooleanField(default=True)
    decisions = serializers.DictField(
        child=serializers.ChoiceField(choices=Lesion.Decision.values),
        required=False,
        help_text=(
            "{lesion id: decision} as the reviewer's page shows them; the approval is "
            "refused (409 decisions_changed) unless the stored decisions are these."
        ),
    )

    def validate_decisions(self, value: dict[str, str]) -> dict[int, str]:
        try:
            return {int(key): decision for key, decision in value.items()}
        except ValueError:
            raise serializers.ValidationError("keys must be lesion ids.") from None


class ConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class ReviewEffortVersionSerializer(serializers.Serializer):
    """Review effort per model version: means over its reviewed (approved) studies."""

    model_version = serializers.DictField()
    n_studies = serializers.IntegerField()
    accepted_unchanged_fraction = serializers.FloatField(
        allow_null=True, help_text="Mean share of the model's lesions accepted unchanged."
    )
    edited = serializers.FloatField(help_text="Mean lesions edited per study.")
    rejected = serializers.FloatField(help_text="Mean lesions rejected per study.")
    added = serializers.FloatField(help_text="Mean lesions added (drawn) per study.")
    voxels_added = serializers.FloatField()
    voxels_removed = serializers.FloatField()
    voxels_changed = serializers.FloatField(help_text="Mean voxels added + removed per study.")
    active_minutes = serializers.FloatField(help_text="Mean active review minutes per study.")


class ReviewEffortStudySerializer(serializers.Serializer):
    study = serializers.IntegerField(source="study_id")
    approval = serializers.IntegerField(source="approval_id")
    model_version = serializers.CharField(source="model_version.name")
    reviewer = serializers.CharField(source="reviewer.username", allow_null=True, default=None)
    model_lesions = serializers.IntegerField()
    accepted_unchanged = serializers.IntegerField()
    accepted_unchanged_fraction = serializers.FloatField(allow_null=True)
    edited = serializers.IntegerField()
    rejected = serializers.IntegerField()
    added = serializers.IntegerField()
    voxels_added = serializers.IntegerField()
    voxels_removed = serializers.IntegerField()
    active_seconds = serializers.FloatField()
    created_at = serializers.DateTimeField()


class ReviewEffortSerializer(serializers.Serializer):
    results = ReviewEffortVersionSerializer(many=True)
    studies = ReviewEffortStudySerializer(many=True, required=False)

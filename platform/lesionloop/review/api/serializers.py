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

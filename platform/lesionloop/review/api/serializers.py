"""Input and output shapes of the review API (docs/API.md)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from lesionloop.core.api import FiniteFloatField
from lesionloop.studies.api.serializers import ModelVersionRefSerializer, RevisionSerializer

from ..models import Lesion, Ruler


class LesionSerializer(serializers.ModelSerializer):
    model_version = ModelVersionRefSerializer(allow_null=True, read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    centroid_vox = serializers.ListField(child=FiniteFloatField(), read_only=True)
    centroid_mm = serializers.ListField(child=FiniteFloatField(), read_only=True)
    volume_mm3 = FiniteFloatField(read_only=True)
    mean_prob = FiniteFloatField(read_only=True, allow_null=True)
    max_prob = FiniteFloatField(read_only=True, allow_null=True)
    disagreement = FiniteFloatField(read_only=True, allow_null=True)
    longest_axial_diameter_mm = FiniteFloatField(
        read_only=True,
        allow_null=True,
        help_text=(
            "Longest in-plane distance between voxel centres on one axial slice (mm, "
            "RANO-BM's measure); null until measured, and for a lesion erased whole "
            "(0 mm3, rejected)."
        ),
    )
    longest_diameter_mm = FiniteFloatField(
        read_only=True,
        allow_null=True,
        help_text=(
            "Longest 3D distance between voxel centres (mm); null until measured, and "
            "for a lesion erased whole (0 mm3, rejected)."
        ),
    )
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
            "longest_axial_diameter_mm",
            "longest_diameter_mm",
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


class LesionProposalRequestSerializer(serializers.Serializer):
    """A clicked voxel (array indices: z = slice, y = row, x = column) and the radius."""

    z = serializers.IntegerField(help_text="Slice index (0-based, model grid).")
    y = serializers.IntegerField(help_text="Row index (0-based).")
    x = serializers.IntegerField(help_text="Column index (0-based).")
    radius_mm = serializers.FloatField(
        required=False,
        default=20.0,
        help_text="The proposal stays within this distance of the click (mm, at most 50).",
    )
    ignore_labels = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=65535),
        required=False,
        default=list,
        max_length=1000,
        help_text=(
            "Labels erased in the viewer and not saved yet: their voxels on the saved mask "
            "count as free (a click where an erased lesion was proposes a lesion there)."
        ),
    )


class LesionProposalSerializer(serializers.Serializer):
    """A proposed lesion, not stored: accept it by painting it into the mask and saving."""

    bbox = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="z0, y0, x0, z1, y1, x1 (exclusive ends) on the model grid.",
    )
    runs = serializers.ListField(
        child=serializers.IntegerField(),
        help_text=(
            "Run lengths of the mask on bbox, flattened z, then y, then x (x fastest), "
            "alternating outside / inside, starting with outside (0 if the first voxel is in)."
        ),
    )
    volume_vox = serializers.IntegerField()
    volume_mm3 = FiniteFloatField()
    longest_axial_diameter_mm = FiniteFloatField()
    longest_diameter_mm = FiniteFloatField()
    method = serializers.ChoiceField(choices=["probability", "image"])
    seed = serializers.ListField(child=serializers.IntegerField(), help_text="z, y, x grown from.")
    threshold = FiniteFloatField(help_text="Probability, or MR signal, of the lesion's edge.")
    radius_mm = FiniteFloatField()
    revision = serializers.IntegerField(help_text="The working-mask revision it avoids.")


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


@extend_schema_field(OpenApiTypes.ANY)
class _AsParsed(serializers.Field):
    """The parsed JSON value as it is (DRF's JSONField refuses an infinite number before
    the service could answer with its own code)."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class RulerRequestSerializer(serializers.Serializer):
    """A ruler to keep: checked by ``services.ruler_save`` (its error codes: bad_plane,
    bad_slice, bad_point), so the fields take any JSON value here."""

    plane = _AsParsed(help_text="axial, coronal or sagittal.")
    slice = _AsParsed(help_text="Slice index of the plane (0-based integer).")
    a = _AsParsed(help_text="[row, col]: one end, image pixels of the plane.")
    b = _AsParsed(help_text="[row, col]: the other end.")


class RulerSerializer(serializers.Serializer):
    """A kept ruler: ends in the plane's image pixels, length in mm (from the grid)."""

    id = serializers.IntegerField()
    plane = serializers.CharField()
    slice = serializers.IntegerField(source="slice_index")
    a = serializers.SerializerMethodField()
    b = serializers.SerializerMethodField()
    length_mm = FiniteFloatField()
    created_at = serializers.DateTimeField()

    def get_a(self, ruler: Ruler) -> list[float]:
        return [ruler.a_row, ruler.a_col]

    def get_b(self, ruler: Ruler) -> list[float]:
        return [ruler.b_row, ruler.b_col]

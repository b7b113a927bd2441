"""Reads for the model registry."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import ModelVersion


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("parent", "created_by", "promoted_by")


def model_version_get(*, version_id: int) -> ModelVersion:
    return model_version_list().get(pk=version_id)


def model_version_active() -> ModelVersion | None:
    """The one active version (at most one: a partial unique constraint), or None."""
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()


def model_version_never_activated(*, besides: int | None = None) -> bool:
    """True while no version (other than ``besides``) has ever been promoted."""
    return not ModelVersion.objects.filter(promoted_at__isnull=False).exclude(pk=besides).exists()


def model_version_parent_chain(version: ModelVersion) -> list[ModelVersion]:
    """Parents from the nearest up to the root (guarded against cycles)."""
    chain, seen = [], {version.pk}
    current = version.parent
    while current is not None and current.pk not in seen:
        chain.append(current)
        seen.add(current.pk)
        current = current.parent
    return chain


def _studies(ids: list[int]) -> list[dict[str, Any]]:
    from lesionloop.studies.models import Study

    rows = {
        s.pk: {"id": s.pk, "patient_label": s.patient_label, "status": s.status}
        for s in Study.objects.filter(pk__in=ids).only("id", "patient_label", "status")
    }
    # Keep ids of studies that are gone too: the lineage must not silently shrink.
    return [rows.get(i, {"id": i, "patient_label": None, "status": "missing"}) for i in ids]


def model_version_lineage(version: ModelVersion) -> dict[str, Any]:
    from lesionloop.studies.models import Prediction

    predictions = (
        Prediction.objects.filter(model_version=version)
        .select_related("study")
        .order_by("created_at", "id")
    )
    return {
        "version": version,
        "parents": model_version_parent_chain(version),
        "trained_on": _studies(list(version.train_study_ids or [])),
        "validated_on": _studies(list(version.val_study_ids or [])),
        "presegmented": [
            {
                "id": p.study_id,
                "patient_label": p.study.patient_label,
                "status": p.study.status,
                "predicted_at": p.created_at,
                "lesion_count": len(p.lesions or []),
            }
            for p in predictions
        ],
    }

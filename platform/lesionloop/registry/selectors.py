"""Reads for the model registry."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import GateScore, GateSetVersion, ModelVersion


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related(
        "parent", "created_by", "promoted_by"
    ).prefetch_related("gate_scores__gate_set")


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


def gate_set_current() -> GateSetVersion | None:
    """The newest gate set version (the one every compared version must be scored on)."""
    return GateSetVersion.objects.order_by("-number").first()


def gate_score_done(*, version_id: int, gate_set: GateSetVersion) -> GateScore | None:
    return GateScore.objects.filter(
        model_version_id=version_id, gate_set=gate_set, status=GateScore.Status.DONE
    ).first()


def gate_summary(version: ModelVersion, current: GateSetVersion | None) -> dict[str, Any] | None:
    """What the models page shows for ``version``: its score on the current gate set
    (``comparable``), else its newest finished score on an earlier set (not comparable),
    else the state of a pending job. Uses prefetched ``gate_scores`` when there."""
    scores = sorted(version.gate_scores.all(), key=lambda s: s.gate_set.number, reverse=True)
    if current is None:
        return None
    on_current = next((s for s in scores if s.gate_set_id == current.pk), None)
    if on_current is not None and on_current.status == GateScore.Status.DONE:
        return _gate_row(on_current, comparable=True)
    older = next((s for s in scores if s.status == GateScore.Status.DONE), None)
    row = _gate_row(older, comparable=False) if older else {"comparable": False, "metrics": None}
    row["pending"] = on_current.status if on_current is not None else "not requested"
    row["message"] = on_current.message if on_current is not None else ""
    return row


def _gate_row(score: GateScore, *, comparable: bool) -> dict[str, Any]:
    gate = score.gate_set
    return {
        "gate_set": gate.number,
        "n_studies": gate.n_studies,
        "n_lesions": gate.n_lesions,
        "comparable": comparable,
        "metrics": score.metrics,
        "scored_at": score.finished_at,
    }

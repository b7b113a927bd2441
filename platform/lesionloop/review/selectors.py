"""Reads for review: lesions, revisions, rulers."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from lesionloop.core.exceptions import DomainError
from lesionloop.studies.models import Study
from lesionloop.studies.selectors import MODEL_VERSION_DETAILS

from .models import Lesion, MaskRevision, ReviewEffort, Ruler

LESION_ORDERINGS = {
    "volume_mm3": ("volume_mm3", "id"),
    "-volume_mm3": ("-volume_mm3", "-id"),
}


def study_lesions(*, study_id: int, ordering: str | None = None) -> QuerySet[Lesion]:
    ordering = ordering or "volume_mm3"
    if ordering not in LESION_ORDERINGS:
        raise DomainError(
            f"ordering must be one of {', '.join(LESION_ORDERINGS)}.", code="bad_ordering"
        )
    return (
        Lesion.objects.filter(study_id=study_id)
        .select_related("model_version", "decided_by")
        .defer(*MODEL_VERSION_DETAILS)
        .order_by(*LESION_ORDERINGS[ordering])
    )


def revision_current(*, study_id: int, number: int) -> MaskRevision | None:
    if not number:
        return None
    return (
        MaskRevision.objects.select_related("author")
        .filter(study_id=study_id, number=number)
        .first()
    )


def lease_state(*, study: Study, user: Any, client: str) -> dict[str, Any]:
    """Who holds the review lease as seen from ``user`` in client session ``client``.

    ``mine``: this client session holds a live lease; ``yours``: the user holds it, here
    or in another tab. Polled by the viewer every few seconds, so a tab that lost its
    lease turns read-only within seconds. Also the study's ``status`` and current
    ``revision`` number, so a tab can tell whether its copy is stale.
    """
    live = study.lease_live()
    yours = live and study.lease_user_id == user.pk
    return {
        "user": study.lease_user.get_username() if live and study.lease_user else None,
        "expires_at": study.lease_expires_at if live else None,
        "mine": bool(yours and study.lease_client == client),
        "yours": bool(yours),
        "status": study.status,
        "revision": study.revision_number,
    }


def review_efforts(*, model_version_id: int | None = None) -> QuerySet[ReviewEffort]:
    """Effort records of current approvals (a reopened study's earlier one is superseded)."""
    rows = ReviewEffort.objects.filter(approval__superseded=False).select_related(
        "model_version", "reviewer"
    )
    if model_version_id is not None:
        rows = rows.filter(model_version_id=model_version_id)
    return rows.order_by("created_at", "id")


def review_effort_by_model_version() -> list[dict[str, Any]]:
    """Per model version (newest first): mean accepted-unchanged fraction (over studies
    where the model proposed something), mean lesions edited / rejected / added, mean
    voxels added, removed and changed, mean active minutes, over its reviewed studies."""
    by_version: dict[int, list[ReviewEffort]] = {}
    for row in review_efforts():
        by_version.setdefault(row.model_version_id, []).append(row)
    out = []
    for rows in by_version.values():
        version = rows[0].model_version
        fractions = [r.accepted_unchanged_fraction for r in rows]
        defined = [f for f in fractions if f is not None]
        n = len(rows)

        def mean(values: list[float], n: int = n) -> float:
            return round(sum(values) / n, 3)

        out.append(
            {
                "model_version": {"id": version.pk, "name": version.name},
                "n_studies": n,
                "accepted_unchanged_fraction": round(sum(defined) / len(defined), 3)
                if defined
                else None,
                "edited": mean([r.edited for r in rows]),
                "rejected": mean([r.rejected for r in rows]),
                "added": mean([r.added for r in rows]),
                "voxels_added": mean([r.voxels_added for r in rows]),
                "voxels_removed": mean([r.voxels_removed for r in rows]),
                "voxels_changed": mean([r.voxels_added + r.voxels_removed for r in rows]),
                "active_minutes": mean([r.active_seconds / 60 for r in rows]),
            }
        )
    return sorted(out, key=lambda r: -r["model_version"]["id"])


def study_rulers(*, study_id: int, user: Any) -> QuerySet[Ruler]:
    """``user``'s rulers on the study, one per plane at most: axial, coronal, sagittal
    (alphabetical is that order)."""
    return Ruler.objects.filter(study_id=study_id, user=user).order_by("plane")

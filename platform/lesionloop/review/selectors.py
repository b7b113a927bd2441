"""Reads for review: lesions and revisions."""

from __future__ import annotations

from django.db.models import QuerySet

from lesionloop.core.api import DomainError

from .models import Lesion, MaskRevision

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


def study_revisions(*, study_id: int) -> QuerySet[MaskRevision]:
    return MaskRevision.objects.filter(study_id=study_id).order_by("number")

"""Reads for review: lesions and revisions."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from lesionloop.core.exceptions import DomainError
from lesionloop.studies.models import Study

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

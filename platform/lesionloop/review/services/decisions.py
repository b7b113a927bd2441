"""The clinician's decision on one lesion."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from lesionloop.audit.services import audit_record
from lesionloop.core.exceptions import DomainError

from ..models import Lesion
from ._common import _denormalise, _lock, _require_editable
from .leases import _lease_hold


def lesion_decide(
    *, study_id: int, lesion_id: int, user: User, decision: str, client: str = ""
) -> Lesion:
    """Record the clinician's decision on one lesion: ``accepted``, ``rejected`` or
    ``pending``. Accepting keeps the lesion as its contour says: ``accepted`` for the
    model's or an imported contour, ``edited`` for an edited one, ``added`` for a drawn
    one (so undoing a reject restores what was there). The only way a decision changes,
    besides a save that draws a new lesion or erases one whole.

    400 ``invalid_decision``; 404 ``not_found``; 409 ``approved`` / ``not_ready`` /
    ``leased``.
    """
    if decision not in ("accepted", "rejected", "pending"):
        raise DomainError(
            "decision must be accepted, rejected or pending.", code="invalid_decision"
        )
    with transaction.atomic():
        study = _lock(study_id)
        try:
            lesion = Lesion.objects.select_for_update().get(pk=lesion_id, study=study)
        except Lesion.DoesNotExist:
            raise DomainError(
                "No such lesion in this study.", code="not_found", status_code=404
            ) from None
        _require_editable(study)
        _lease_hold(study, user, client, active=True)
        before = lesion.decision
        if decision == Lesion.Decision.ACCEPTED:
            decision = lesion.kept_decision
        lesion.decision = decision
        lesion.decided_by = None if decision == "pending" else user
        lesion.decided_at = None if decision == "pending" else timezone.now()
        lesion.save(update_fields=["decision", "decided_by", "decided_at"])
        _denormalise(study)
        study.save(update_fields=["lesion_count", "smallest_lesion_mm3", "updated_at"])
        audit_record(
            event_type="lesion_decision",
            actor=user,
            study=study,
            lesion=lesion.pk,
            label=lesion.label,
            before=before,
            decision=decision,
        )
    return lesion

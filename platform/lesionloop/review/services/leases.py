"""The review lease: one user in one client session (tab) edits a study at a time."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from lesionloop.audit.services import audit_record
from lesionloop.core.exceptions import Conflict
from lesionloop.studies.models import Study

from ._common import EDITABLE_STATUSES, _lock
from .effort import review_activity_beat


def _lease_holds(study: Study, user: User, client: str) -> bool:
    """Whether ``user`` in client session ``client`` (one tab) is the lease holder."""
    return study.lease_user_id == user.pk and study.lease_client == client


def _lease_conflict(study: Study, user: User | None = None) -> Conflict:
    """409 ``leased``: someone else, or the same user in another tab, holds the lease."""
    holder = study.lease_user.get_username() if study.lease_user else "someone"
    yours = user is not None and study.lease_user_id == user.pk
    until = f"{study.lease_expires_at:%H:%M:%S} UTC"
    if yours:
        detail = (
            f"You are reviewing this study in another tab or window (lease until {until}). "
            "Edit it there, or take over here."
        )
    else:
        detail = f"This study is being reviewed by {holder} (lease until {until})."
    return Conflict(
        detail,
        code="leased",
        extra={"user": holder, "expires_at": study.lease_expires_at.isoformat(), "yours": yours},
    )


def _lease_hold(study: Study, user: User, client: str = "", *, active: bool = False) -> bool:
    """Take or renew the lease on a locked study row for ``user`` in client session
    ``client``; True when newly taken. 409 ``leased`` while another holder's lease is live
    (another user, or the same user in another tab). ``active``: the user did something
    since this client's previous renewal (counts review time, ``effort``)."""
    now = timezone.now()
    live = study.lease_live(now)
    if live and not _lease_holds(study, user, client):
        raise _lease_conflict(study, user)
    study.lease_user = user
    study.lease_client = client
    study.lease_expires_at = now + timedelta(seconds=settings.LESIONLOOP_LEASE_SECONDS)
    fields = ["lease_user", "lease_client", "lease_expires_at", "updated_at"]
    if study.status == Study.Status.READY:
        study.status = Study.Status.IN_REVIEW
        study.status_reason = ""
        fields += ["status", "status_reason"]
    study.save(update_fields=fields)
    review_activity_beat(study=study, client=client, active=active, continued=live, now=now)
    if not live:
        audit_record(
            event_type="lease_taken", actor=user, study=study, expires_at=study.lease_expires_at
        )
    return not live


def _require_lease(study: Study, user: User, client: str) -> None:
    """409 ``leased`` unless the lease is free or held by ``user`` in ``client``."""
    if study.lease_live() and not _lease_holds(study, user, client):
        raise _lease_conflict(study, user)


def lease_take(
    *, study_id: int, user: User, client: str = "", take_over: bool = False, active: bool = False
) -> Study:
    """Take or renew the review lease for ``user`` in client session ``client``.

    409 ``leased`` while someone else holds it, or while the same user holds it in
    another client session (tab) - unless ``take_over``, which moves the user's own lease
    to this tab (the other tab turns read-only; audited as ``lease_taken_over``). A lease
    never passes from one user to another while it is live. ``active``: the viewer saw
    user activity since its previous renewal (review time, docs/PLATFORM.md).
    """
    with transaction.atomic():
        study = _lock(study_id)
        if study.status not in (*EDITABLE_STATUSES, Study.Status.APPROVED):
            raise Conflict(
                f"The study is {study.status}; it can be reviewed once it is ready.",
                code="not_ready",
            )
        if (
            take_over
            and study.lease_live()
            and study.lease_user_id == user.pk
            and study.lease_client != client
        ):
            audit_record(event_type="lease_taken_over", actor=user, study=study)
            study.lease_client = client
        _lease_hold(study, user, client, active=active)
    return study


def lease_release(*, study_id: int, user: User, client: str = "") -> None:
    """Give the lease back; only its holder (user and client session) can. Releasing
    from another tab of the same user leaves the lease with the tab that holds it."""
    with transaction.atomic():
        study = _lock(study_id)
        if not _lease_holds(study, user, client):
            if study.lease_live():
                raise _lease_conflict(study, user)
            return
        study.lease_user = None
        study.lease_client = ""
        study.lease_expires_at = None
        study.save(update_fields=["lease_user", "lease_client", "lease_expires_at", "updated_at"])
        audit_record(event_type="lease_released", actor=user, study=study)

"""Approval (with its training snapshot) and reopening."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from django.contrib.auth.models import User
from django.db import transaction

from lesionloop.audit.services import audit_record
from lesionloop.core.exceptions import Conflict
from lesionloop.studies import storage
from lesionloop.studies.models import Study

from ..models import Approval, Lesion, MaskRevision
from ._common import KEPT_DECISIONS, _kept_labels, _lock, _require_editable
from .effort import review_activity_beat, review_effort_record
from .leases import _lease_hold, _require_lease
from .revisions import current_mask


def _snapshot(
    *, study: Study, approval: Approval, labels: list[int], mask: np.ndarray | None = None
) -> Path:
    """A complete prepared-study dir for training: hard links + the approved ground truth
    (from ``mask``, the current working mask, read here when not given)."""
    prepared = storage.prepared_dir(study.pk)
    target = storage.study_dir(study.pk) / "approvals" / str(approval.pk)
    tmp = storage.temp_dir_beside(target)
    try:
        for src in prepared.iterdir():
            # Training reads the arrays; the viewer's precompressed copies stay behind.
            if not src.is_file() or src.name == "ground_truth.npy" or src.name.endswith(".i16.gz"):
                continue
            try:
                os.link(src, tmp / src.name)
            except OSError:
                shutil.copy2(src, tmp / src.name)
        mask = current_mask(study) if mask is None else mask
        gt = np.isin(mask, np.asarray(labels, dtype=np.uint16)).astype(np.uint8)
        np.save(tmp / "ground_truth.npy", gt)
        storage.publish_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _approve_locked(
    *,
    study: Study,
    user: User | None,
    revision: MaskRevision,
    training_eligible: bool,
    mask: np.ndarray | None = None,
) -> Approval:
    """Approve ``revision`` with the kept lesions and write the training snapshot
    (study locked; ``mask``: its working mask, if the caller has it); frees the lease."""
    labels = list(study.lesions.filter(decision__in=KEPT_DECISIONS).values_list("label", flat=True))
    approval = Approval.objects.create(
        study=study,
        revision=revision,
        approved_by=user,
        training_eligible=training_eligible,
        lesion_labels=labels,
    )
    approval.snapshot_dir = storage.relative(
        _snapshot(study=study, approval=approval, labels=labels, mask=mask)
    )
    approval.save(update_fields=["snapshot_dir"])
    study.status = Study.Status.APPROVED
    study.status_reason = ""
    study.approved_at = approval.approved_at
    study.approved_by = user
    study.training_eligible = training_eligible
    study.lease_user = None
    study.lease_client = ""
    study.lease_expires_at = None
    study.save()
    audit_record(
        event_type="study_approved",
        actor=user,
        study=study,
        model_version=study.model_version_id,
        approval=approval.pk,
        revision=revision.number,
        training_eligible=training_eligible,
        lesions=labels,
    )
    # What an eligible approval may start (retraining) is chained by lesionloop.loop.flows.
    return approval


def study_approve(
    *,
    study_id: int,
    user: User,
    training_eligible: bool = True,
    client: str = "",
    expected_decisions: dict[int, str] | None = None,
) -> Study:
    """Approve the current revision with the kept lesions; frees the lease.

    ``expected_decisions`` ({lesion id: decision}, what the clinician's page shows): when
    given, the approval is refused unless the stored decisions are exactly these, so what
    is approved and exported is what the clinician saw.

    409 ``approved`` / ``not_ready`` / ``leased`` / ``decisions_changed`` /
    ``undecided_lesions`` / ``empty_lesions``.
    """
    with transaction.atomic():
        study = _lock(study_id)
        _require_editable(study)
        _require_lease(study, user, client)
        if expected_decisions is not None:
            _require_decisions(study, expected_decisions)
        pending = list(
            study.lesions.filter(decision=Lesion.Decision.PENDING)
            .order_by("volume_mm3")
            .values_list("id", flat=True)
        )
        if pending:
            raise Conflict(
                f"{len(pending)} lesion(s) still need a decision (accept, reject or edit).",
                code="undecided_lesions",
                extra={"pending_lesions": pending},
            )
        mask = current_mask(study)
        _require_voxels(study, mask)
        revision = MaskRevision.objects.get(study=study, number=study.revision_number)
        if study.lease_live():  # the approval itself is the review's last action
            review_activity_beat(study=study, client=client, active=True, continued=True)
        approval = _approve_locked(
            study=study,
            user=user,
            revision=revision,
            training_eligible=training_eligible,
            mask=mask,
        )
        review_effort_record(study=study, approval=approval, mask=mask, user=user)
    return study


def _require_decisions(study: Study, expected: dict[int, str]) -> None:
    """409 ``decisions_changed`` unless the stored decisions are ``expected``."""
    stored = dict(study.lesions.values_list("id", "decision"))
    differ = sorted(
        lesion_id
        for lesion_id in set(stored) | set(expected)
        if stored.get(lesion_id) != expected.get(lesion_id)
    )
    if differ:
        raise Conflict(
            "The lesion decisions changed since this page loaded them (another tab or "
            "reviewer). Reload the lesions, check them, then approve.",
            code="decisions_changed",
            extra={"lesions": differ},
        )


def _require_voxels(study: Study, mask: np.ndarray) -> None:
    """409 ``empty_lesions``: a kept lesion with no voxels in the saved ``mask`` (erased,
    then accepted again without saving its restored contour)."""
    kept = _kept_labels(study)
    if not kept:
        return
    counts = np.bincount(mask.ravel(), minlength=max(kept) + 1)  # one pass, no sort
    empty = [label for label in kept if counts[label] == 0]
    if empty:
        names = ", ".join(str(label) for label in empty)
        raise Conflict(
            f"Lesion {names} is kept but has no voxels in the saved contour: save its "
            "restored contour, or reject it.",
            code="empty_lesions",
            extra={"labels": empty},
        )


def study_reopen(*, study_id: int, user: User, client: str = "") -> Study:
    """Supersede the approval and take the lease for a new review (409 ``not_approved``
    / ``leased``)."""
    with transaction.atomic():
        study = _lock(study_id)
        if study.status != Study.Status.APPROVED:
            raise Conflict("Only an approved study can be reopened.", code="not_approved")
        _require_lease(study, user, client)
        Approval.objects.filter(study=study, superseded=False).update(superseded=True)
        study.status = Study.Status.IN_REVIEW
        study.approved_at = None
        study.approved_by = None
        study.training_eligible = False
        study.save()
        _lease_hold(study, user, client)
        audit_record(event_type="study_reopened", actor=user, study=study)
    return study

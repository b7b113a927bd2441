"""Writes for review: leases, lesion decisions, mask revisions, approval, export.

Every write locks the study row first (``select_for_update``), then touches lesions
and revisions, so concurrent editors serialise on one row in a fixed order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from lesionloop.audit.services import audit_record
from lesionloop.core.exceptions import Conflict, DomainError
from lesionloop.studies import storage
from lesionloop.studies.models import Study
from ml.lesions import changed_labels, label_stats

from .models import Approval, Lesion, MaskRevision

log = logging.getLogger(__name__)

KEPT_DECISIONS = (Lesion.Decision.ACCEPTED, Lesion.Decision.EDITED, Lesion.Decision.ADDED)
EDITABLE_STATUSES = (Study.Status.READY, Study.Status.IN_REVIEW)


# --- helpers ------------------------------------------------------------------------


def _lock(study_id: int) -> Study:
    try:
        return Study.objects.select_for_update().get(pk=study_id)
    except Study.DoesNotExist:
        raise DomainError("No such study.", code="not_found", status_code=404) from None


def _shape(study: Study) -> tuple[int, int, int]:
    return tuple(int(v) for v in study.grid["shape_dhw"])  # type: ignore[return-value]


def _spacing(study: Study) -> tuple[float, float, float]:
    return tuple(float(v) for v in study.grid["spacing_mm"])  # type: ignore[return-value]


def _require_editable(study: Study) -> None:
    if study.status == Study.Status.APPROVED:
        raise Conflict(
            "The study is approved and its contour frozen; reopen it to change anything.",
            code="approved",
        )
    if study.status not in EDITABLE_STATUSES:
        raise Conflict(
            f"The study is {study.status}; it can be reviewed once it is ready.",
            code="not_ready",
        )


def _lease_live(study: Study, now: Any = None) -> bool:
    now = now or timezone.now()
    return (
        study.lease_user_id is not None
        and study.lease_expires_at is not None
        and (study.lease_expires_at > now)
    )


def _lease_holds(study: Study, user: Any, client: str) -> bool:
    """Whether ``user`` in client session ``client`` (one tab) is the lease holder."""
    return study.lease_user_id == user.pk and study.lease_client == client


def _lease_conflict(study: Study, user: Any = None) -> Conflict:
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


def _lease_hold(study: Study, user: Any, client: str = "") -> bool:
    """Take or renew the lease on a locked study row for ``user`` in client session
    ``client``; True when newly taken. 409 ``leased`` while another holder's lease is live
    (another user, or the same user in another tab)."""
    now = timezone.now()
    live = _lease_live(study, now)
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
    if not live:
        audit_record(
            event_type="lease_taken", actor=user, study=study, expires_at=study.lease_expires_at
        )
    return not live


def _require_lease(study: Study, user: Any, client: str) -> None:
    """409 ``leased`` unless the lease is free or held by ``user`` in ``client``."""
    if _lease_live(study) and not _lease_holds(study, user, client):
        raise _lease_conflict(study, user)


def _denormalise(study: Study) -> None:
    """Refresh the worklist columns from the lesions (call with the study locked)."""
    live = study.lesions.exclude(decision=Lesion.Decision.REJECTED)
    volumes = list(live.values_list("volume_mm3", flat=True))
    study.lesion_count = len(volumes)
    study.smallest_lesion_mm3 = min(volumes) if volumes else None


# --- revisions ----------------------------------------------------------------------


def mask_revision_create(
    *,
    study: Study,
    data_gz: bytes,
    author: Any = None,
    model_version: Any = None,
    reason: str = "",
    array: np.ndarray | None = None,
) -> MaskRevision:
    """Keep ``data_gz`` (gzip of raw uint16 (D,H,W)) as the next revision. Study locked.

    ``array``, when the caller has the decoded mask at hand, is also kept raw as the
    working copy so the next save diffs against it without inflating the gzip.
    """
    number = study.revision_number + 1
    path = storage.study_dir(study.pk) / "revisions" / f"{number}.u16.gz"
    storage.atomic_write_bytes(path, data_gz)
    if array is not None:
        _working_copy_write(study, number, array)
    if author is not None:
        label = author.get_username()
    elif model_version is not None:
        label = f"model {model_version.name}"
    else:
        label = "system"
    revision = MaskRevision.objects.create(
        study=study,
        number=number,
        file=storage.relative(path),
        sha256=hashlib.sha256(data_gz).hexdigest(),
        author=author,
        author_label=label,
        model_version=model_version,
        reason=reason[:500],
    )
    study.revision_number = number
    study.save(update_fields=["revision_number", "updated_at"])
    audit_record(
        event_type="mask_revision",
        actor=author,
        actor_label=label,
        study=study,
        model_version=model_version,
        revision=number,
        sha256=revision.sha256,
        reason=reason,
    )
    return revision


def _working_copy_path(study: Study, number: int) -> Path:
    return storage.study_dir(study.pk) / "revisions" / f"working-{number}.u16"


def _working_copy_write(study: Study, number: int, array: np.ndarray) -> None:
    """Raw copy of revision ``number`` (a cache: the gzip revision stays the record)."""
    path = _working_copy_path(study, number)
    raw = np.ascontiguousarray(array, dtype="<u2").tobytes()
    storage.atomic_write_bytes(path, raw)
    for old in path.parent.glob("working-*.u16"):
        if old != path:
            old.unlink(missing_ok=True)


def current_mask(study: Study) -> np.ndarray:
    if not study.revision_number:
        return np.zeros(_shape(study), dtype=np.uint16)
    shape = _shape(study)
    cached = _working_copy_path(study, study.revision_number)
    if cached.exists() and cached.stat().st_size == int(np.prod(shape)) * 2:
        return np.fromfile(cached, dtype="<u2").reshape(shape)
    revision = MaskRevision.objects.get(study=study, number=study.revision_number)
    return storage.read_gz_array(storage.absolute(revision.file), dtype="uint16", shape=shape)


def study_prediction_apply(
    *,
    study: Study,
    model_version: Any,
    labels_gz: bytes,
    lesions: list[dict[str, Any]],
    priority: float,
) -> MaskRevision:
    """A model's prediction becomes the working mask of an unreviewed study (locked)."""
    revision = mask_revision_create(
        study=study,
        data_gz=labels_gz,
        model_version=model_version,
        reason=f"pre-segmentation by model {model_version.name}",
    )
    study.lesions.all().delete()
    Lesion.objects.bulk_create(
        [
            Lesion(
                study=study,
                model_version=model_version,
                **{k: row[k] for k in _LESION_FIELDS if k in row},
            )
            for row in lesions
        ]
    )
    study.model_version = model_version
    study.priority = priority
    study.status = Study.Status.READY
    study.status_reason = ""
    _denormalise(study)
    study.save()
    return revision


_LESION_FIELDS = (
    "label",
    "volume_vox",
    "volume_mm3",
    "centroid_vox",
    "centroid_mm",
    "bbox",
    "largest_slice",
    "mean_prob",
    "max_prob",
    "disagreement",
)


def study_ground_truth_apply(
    *, study: Study, approved_by: Any = None, training_eligible: bool = True
) -> Approval:
    """Ground truth (prepared ``ground_truth.npy``) becomes revision 1, approved (locked)."""
    from ml.lesions import label_lesions

    gt = np.load(storage.prepared_dir(study.pk) / "ground_truth.npy")
    labels, _ = label_lesions(gt)
    labels = labels.astype(np.uint16)
    revision = mask_revision_create(
        study=study,
        data_gz=storage.gzip_array(labels, dtype="uint16"),
        author=approved_by,
        reason="ground truth import",
    )
    now = timezone.now()
    stats = label_stats(labels, _spacing(study))
    Lesion.objects.bulk_create(
        [
            Lesion(
                study=study,
                decision=Lesion.Decision.ACCEPTED,
                contour_source=Lesion.ContourSource.IMPORTED,
                decided_by=approved_by,
                decided_at=now,
                **{k: row[k] for k in _LESION_FIELDS if k in row},
            )
            for row in stats.values()
        ]
    )
    study.status = Study.Status.IN_REVIEW
    _denormalise(study)
    study.save()
    return _approve_locked(
        study=study, user=approved_by, revision=revision, training_eligible=training_eligible
    )


# --- leases -------------------------------------------------------------------------


def lease_take(*, study_id: int, user: Any, client: str = "", take_over: bool = False) -> Study:
    """Take or renew the review lease for ``user`` in client session ``client``.

    409 ``leased`` while someone else holds it, or while the same user holds it in
    another client session (tab) - unless ``take_over``, which moves the user's own lease
    to this tab (the other tab turns read-only; audited as ``lease_taken_over``). A lease
    never passes from one user to another while it is live.
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
            and _lease_live(study)
            and study.lease_user_id == user.pk
            and study.lease_client != client
        ):
            audit_record(event_type="lease_taken_over", actor=user, study=study)
            study.lease_client = client
        _lease_hold(study, user, client)
    return study


def lease_release(*, study_id: int, user: Any, client: str = "") -> None:
    """Give the lease back; only its holder (user and client session) can. Releasing
    from another tab of the same user leaves the lease with the tab that holds it."""
    with transaction.atomic():
        study = _lock(study_id)
        if not _lease_holds(study, user, client):
            if _lease_live(study):
                raise _lease_conflict(study, user)
            return
        study.lease_user = None
        study.lease_client = ""
        study.lease_expires_at = None
        study.save(update_fields=["lease_user", "lease_client", "lease_expires_at", "updated_at"])
        audit_record(event_type="lease_released", actor=user, study=study)


# --- lesion decisions ---------------------------------------------------------------


def lesion_decide(
    *, study_id: int, lesion_id: int, user: Any, decision: str, client: str = ""
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
        _lease_hold(study, user, client)
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


# --- mask save ----------------------------------------------------------------------


def parse_if_match(value: str | None) -> int:
    if not value:
        raise DomainError(
            'Send If-Match: "<revision>" with the revision the edit started from.',
            code="if_match_required",
            status_code=428,
        )
    token = value.strip()
    if token.startswith("W/"):
        token = token[2:]
    token = token.strip().strip('"')
    if not token.isdigit():
        raise DomainError(f"If-Match {value!r} is not a revision number.", code="bad_if_match")
    return int(token)


def _decode_mask(
    body: bytes, *, shape: tuple[int, int, int], gzipped: bool
) -> tuple[np.ndarray, bool]:
    """The mask, and whether ``body`` is exactly one complete gzip member of it."""
    expected = int(np.prod(shape)) * 2
    raw = body
    clean_gzip = False
    if gzipped or body[:2] == b"\x1f\x8b":
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            raw = inflater.decompress(body, expected + 1)  # never inflate beyond one mask
        except zlib.error as exc:
            raise DomainError(f"The mask is not valid gzip ({exc}).", code="bad_mask") from None
        clean_gzip = inflater.eof and not inflater.unused_data
    if len(raw) != expected:
        raise DomainError(
            f"The mask must be {expected} bytes of uint16 {list(shape)} (D,H,W); got "
            f"{len(raw) if len(raw) <= expected else 'more'} bytes.",
            code="bad_mask",
        )
    return np.frombuffer(raw, dtype="<u2").reshape(shape), clean_gzip


def _changed_region(
    old: np.ndarray, new: np.ndarray, changed: set[int], existing: dict[int, Lesion]
) -> tuple[slice, slice, slice]:
    """A box holding every voxel of the changed labels in ``new``.

    A changed label's voxels in ``new`` either did not change (so they lie in its old
    box, kept on its lesion row) or changed (so they lie in the box of the diff).
    Without a row for some label, the whole volume.
    """
    full = tuple(slice(0, n) for n in new.shape)
    diff = old != new
    boxes = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(diff.any(axis=other))
        if hits.size == 0:
            return full  # type: ignore[return-value]
        boxes.append((int(hits[0]), int(hits[-1]) + 1))
    for label in changed:
        lesion = existing.get(label)
        if lesion is None or len(lesion.bbox or []) != 6:
            if lesion is None and not np.any(old == label):
                continue  # a new label: all its voxels are in the diff
            return full  # type: ignore[return-value]
        for axis in range(3):
            lo, hi = boxes[axis]
            boxes[axis] = (min(lo, lesion.bbox[axis]), max(hi, lesion.bbox[axis + 3]))
    return tuple(slice(lo, hi) for lo, hi in boxes)  # type: ignore[return-value]


def _stats_in_region(
    labels: np.ndarray,
    spacing: tuple[float, float, float],
    region: tuple[slice, slice, slice],
    *,
    only: list[int],
    prob: np.ndarray | None,
) -> dict[int, dict[str, Any]]:
    """``label_stats`` on a box, with coordinates shifted back to the whole grid."""
    offset = np.array([r.start for r in region], dtype=np.float64)
    crop_prob = None if prob is None else np.asarray(prob[region])
    stats = label_stats(labels[region], spacing, only=only, prob=crop_prob)
    for row in stats.values():
        row["centroid_vox"] = [
            round(v + o, 3) for v, o in zip(row["centroid_vox"], offset, strict=True)
        ]
        row["centroid_mm"] = [
            round(v + o * sp, 3)
            for v, o, sp in zip(row["centroid_mm"], offset, spacing, strict=True)
        ]
        row["bbox"] = [int(v + offset[k % 3]) for k, v in enumerate(row["bbox"])]
        row["largest_slice"] = int(row["largest_slice"] + offset[0])
    return stats


def mask_save(
    *,
    study_id: int,
    user: Any,
    body: bytes,
    gzipped: bool,
    if_match: str | None,
    reason: str = "",
    client: str = "",
) -> tuple[MaskRevision, list[Lesion]]:
    """Save an edited mask as a new revision and update the lesions from the diff.

    Labels new in the mask become ``added`` lesions, labels whose voxels changed become
    ``edited`` (``added`` ones stay ``added``), labels erased entirely become
    ``rejected``. A rejected lesion's contour is frozen: a save that paints into or
    erases from a rejected lesion's label is refused whole (409 ``lesion_rejected``,
    ``labels``), so a save never turns a rejected lesion into a kept one.

    428 ``if_match_required``; 400 ``bad_if_match`` / ``bad_mask``; 409 ``approved`` /
    ``not_ready`` / ``stale_revision`` / ``leased`` / ``lesion_rejected``.
    """
    base = parse_if_match(if_match)
    with transaction.atomic():
        study = _lock(study_id)
        _require_editable(study)
        if base != study.revision_number:
            raise _stale_revision(study, base)
        _lease_hold(study, user, client)
        new, clean_gzip = _decode_mask(body, shape=_shape(study), gzipped=gzipped)
        old = current_mask(study)
        changed = changed_labels(old, new)
        existing = {les.label: les for les in study.lesions.select_for_update()} if changed else {}
        _refuse_rejected_changes(existing, changed)
        revision = mask_revision_create(
            study=study,
            # The editor's own gzip is kept as sent (verified above): no re-compression.
            data_gz=body if clean_gzip else storage.gzip_array(new, dtype="uint16"),
            author=user,
            reason=reason or "edit",
            array=new,
        )
        if changed:
            _lesions_follow_edit(
                study=study,
                user=user,
                old=old,
                new=new,
                changed=changed,
                existing=existing,
                revision=revision,
            )
        _denormalise(study)
        study.save(update_fields=["lesion_count", "smallest_lesion_mm3", "updated_at"])
        lesions = list(
            study.lesions.select_related("model_version", "decided_by").order_by("volume_mm3", "id")
        )
    return revision, lesions


def _stale_revision(study: Study, base: int) -> Conflict:
    """409 ``stale_revision``: someone saved after the revision an edit started from."""
    current = (
        MaskRevision.objects.select_related("author")
        .filter(study=study, number=study.revision_number)
        .first()
    )
    return Conflict(
        f"Someone saved revision {study.revision_number} after revision {base}, "
        f"which this edit started from"
        + (f" ({current.author_label}, {current.created_at:%H:%M:%S} UTC)." if current else "."),
        code="stale_revision",
        extra={
            "current_revision": study.revision_number,
            "changed_by": current.author_label if current else None,
            "changed_at": current.created_at.isoformat() if current else None,
            "reason": current.reason if current else "",
        },
    )


def _refuse_rejected_changes(existing: dict[int, Lesion], changed: set[int]) -> None:
    """409 ``lesion_rejected`` when an edit touches the voxels of a rejected lesion."""
    frozen = sorted(
        label
        for label in changed
        if label in existing and existing[label].decision == Lesion.Decision.REJECTED
    )
    if not frozen:
        return
    names = ", ".join(str(label) for label in frozen)
    raise Conflict(
        f"Lesion {names} {'is' if len(frozen) == 1 else 'are'} rejected, so its contour "
        "cannot change: accept it (or set it back to pending) first, then edit it. "
        "Nothing was saved.",
        code="lesion_rejected",
        extra={"labels": frozen},
    )


def _lesions_follow_edit(
    *,
    study: Study,
    user: Any,
    old: np.ndarray,
    new: np.ndarray,
    changed: set[int],
    existing: dict[int, Lesion],
    revision: MaskRevision,
) -> None:
    """Update the rows of the changed labels from the new mask (study locked)."""
    region = _changed_region(old, new, changed, existing)
    stats = _stats_in_region(new, _spacing(study), region, only=sorted(changed), prob=_prob(study))
    now = timezone.now()
    summary: dict[str, list[int]] = {"added": [], "edited": [], "rejected": []}
    for label in sorted(changed):
        lesion = existing.get(label)
        row = stats.get(label)
        if row is None:
            if lesion is None:
                continue
            lesion.decision = Lesion.Decision.REJECTED
            lesion.decided_by, lesion.decided_at = user, now
            lesion.save(update_fields=["decision", "decided_by", "decided_at"])
            summary["rejected"].append(label)
            continue
        if lesion is None:
            lesion = Lesion(
                study=study,
                label=label,
                decision=Lesion.Decision.ADDED,
                contour_source=Lesion.ContourSource.DRAWN,
            )
            summary["added"].append(label)
        else:
            if lesion.contour_source != Lesion.ContourSource.DRAWN:
                lesion.contour_source = Lesion.ContourSource.EDITED
            lesion.decision = lesion.kept_decision
            summary["edited"].append(label)
        for key in _LESION_FIELDS:
            if key in row:
                setattr(lesion, key, row[key])
        lesion.decided_by, lesion.decided_at = user, now
        lesion.save()
    audit_record(
        event_type="lesions_changed_by_edit",
        actor=user,
        study=study,
        revision=revision.number,
        **summary,
    )


def _prob(study: Study) -> np.ndarray | None:
    """The current model's ensemble probability map, if kept (for added lesions)."""
    if study.model_version_id is None:
        return None
    path = (
        storage.study_dir(study.pk)
        / "predictions"
        / f"mv{study.model_version_id}"
        / "ensemble_prob.f16.npy"
    )
    return np.load(path, mmap_mode="r") if path.exists() else None


# --- approval -----------------------------------------------------------------------


def _snapshot(*, study: Study, approval: Approval, labels: list[int]) -> Path:
    """A complete prepared-study dir for training: hard links + the approved ground truth."""
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
        mask = current_mask(study)
        gt = np.isin(mask, np.asarray(labels, dtype=np.uint16)).astype(np.uint8)
        np.save(tmp / "ground_truth.npy", gt)
        storage.publish_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _approve_locked(
    *, study: Study, user: Any, revision: MaskRevision, training_eligible: bool
) -> Approval:
    labels = list(study.lesions.filter(decision__in=KEPT_DECISIONS).values_list("label", flat=True))
    approval = Approval.objects.create(
        study=study,
        revision=revision,
        approved_by=user,
        training_eligible=training_eligible,
        lesion_labels=labels,
    )
    approval.snapshot_dir = storage.relative(
        _snapshot(study=study, approval=approval, labels=labels)
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
    user: Any,
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
        _require_voxels(study)
        revision = MaskRevision.objects.get(study=study, number=study.revision_number)
        _approve_locked(
            study=study, user=user, revision=revision, training_eligible=training_eligible
        )
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


def _require_voxels(study: Study) -> None:
    """409 ``empty_lesions``: a kept lesion with no voxels in the saved mask (erased,
    then accepted again without saving its restored contour)."""
    kept = _kept_labels(study)
    if not kept:
        return
    present = set(np.unique(current_mask(study)).tolist())
    empty = [label for label in kept if label not in present]
    if empty:
        names = ", ".join(str(label) for label in empty)
        raise Conflict(
            f"Lesion {names} is kept but has no voxels in the saved contour: save its "
            "restored contour, or reject it.",
            code="empty_lesions",
            extra={"labels": empty},
        )


def study_reopen(*, study_id: int, user: Any, client: str = "") -> Study:
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


# --- export -------------------------------------------------------------------------


def _export_study(study_id: int) -> Study:
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        raise DomainError("No such study.", code="not_found", status_code=404)
    if not study.prepared or not study.revision_number:
        raise Conflict("The study has no contour to export yet.", code="not_ready")
    return study


def _kept_labels(study: Study) -> list[int]:
    kept = study.lesions.filter(decision__in=KEPT_DECISIONS).order_by("label")
    return list(kept.values_list("label", flat=True))


def _kept_on_ct_grid(study: Study, kept: list[int]) -> Any:
    """The kept lesions' label mask on the planning-CT grid (a SimpleITK image)."""
    from ml.imaging.grid import mask_to_ct_grid

    mask = current_mask(study)
    out = np.where(np.isin(mask, np.asarray(kept, dtype=np.uint16)), mask, 0).astype(np.uint16)
    return mask_to_ct_grid(out, storage.prepared_dir(study.pk))


def _export_audit(*, study: Study, user: Any, fmt: str, kept: list[int], data: bytes) -> None:
    audit_record(
        event_type="study_exported",
        actor=user,
        study=study,
        format=fmt,
        revision=study.revision_number,
        lesions=kept,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def study_export_nifti(*, study_id: int, user: Any) -> tuple[bytes, str]:
    """Accepted/edited/added lesions as NIfTI labels on the planning-CT grid."""
    import SimpleITK as sitk

    study = _export_study(study_id)
    kept = _kept_labels(study)
    image = _kept_on_ct_grid(study, kept)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labels.nii.gz"
        sitk.WriteImage(image, str(path), True)
        data = path.read_bytes()
    _export_audit(study=study, user=user, fmt="nifti", kept=kept, data=data)
    name = f"study-{study.pk}-rev{study.revision_number}-labels.nii.gz"
    return data, name


def _upload_source(study: Study) -> Path:
    """The kept upload (archive.zip or the dicom/ tree), or 409 ``upload_missing``."""
    up = storage.upload_dir(study.pk)
    for candidate in (up / "archive.zip", up / "dicom"):
        if candidate.is_file() or (candidate.is_dir() and any(candidate.iterdir())):
            return candidate
    raise Conflict(
        "The study's original DICOM upload is not kept on the server (imported studies "
        "keep none), so a DICOM export cannot reference the planning CT; use the NIfTI "
        "export.",
        code="upload_missing",
    )


def _ct_series_uid(study: Study) -> str:
    uid = str((study.dicom or {}).get("ct_series_uid") or "")
    if not uid:
        try:
            info = json.loads((storage.prepared_dir(study.pk) / "study.json").read_text())
            uid = str((info.get("dicom") or {}).get("ct_series_uid") or "")
        except (OSError, ValueError):
            uid = ""
    if not uid:
        raise Conflict(
            "The planning CT's series UID is not recorded for this study.",
            code="upload_unreadable",
        )
    return uid


def _reference_ct(study: Study, source: Path) -> list[Any]:
    """The planning CT's slice headers from the upload, sorted as ingest sorts them."""
    from ml.imaging.errors import IngestError
    from ml.imaging.reference_ct import load_reference_ct

    series_uid = _ct_series_uid(study)
    try:
        return load_reference_ct(source, series_uid)
    except IngestError as exc:
        raise Conflict(
            f"The study's DICOM upload cannot be read for export: {exc.message}",
            code="upload_unreadable",
            extra={"reason": exc.code},
        ) from None
    except (ValueError, OSError) as exc:
        raise Conflict(
            f"The study's DICOM upload cannot be read for export: {exc}",
            code="upload_unreadable",
        ) from None


def _export_dicom(*, study_id: int, user: Any, fmt: str) -> tuple[bytes, str]:
    import SimpleITK as sitk

    from ml.imaging.dicom_export import dataset_bytes
    from ml.imaging.geometry import ct_grid

    study = _export_study(study_id)
    source = _upload_source(study)
    kept = _kept_labels(study)
    if not kept:
        raise Conflict("The study has no accepted lesion to export.", code="no_lesions")
    slices = _reference_ct(study, source)
    image = _kept_on_ct_grid(study, kept)
    problem = ct_grid(slices).mismatch(
        origin_xyz=image.GetOrigin(),
        spacing_xyz=image.GetSpacing(),
        direction=image.GetDirection(),
        size_xyz=image.GetSize(),
    )
    if problem is not None:
        raise Conflict(
            f"The planning CT in the upload does not match the study's CT grid ({problem}).",
            code="upload_mismatch",
        )
    labels = sitk.GetArrayFromImage(image)
    names = {int(label): f"Lesion {int(label)}" for label in kept}
    label = f"LL study {study.pk} r{study.revision_number}"
    description = f"LesionLoop study {study.pk} revision {study.revision_number}"
    if fmt == "rtstruct":
        from ml.imaging.rtstruct import build_rtstruct

        ds = build_rtstruct(
            slices, labels, names, structure_set_label=label, series_description=description
        )
    else:
        from ml.imaging.dicom_seg import build_segmentation

        ds = build_segmentation(slices, labels, names, series_description=description)
    data = dataset_bytes(ds)
    _export_audit(study=study, user=user, fmt=fmt, kept=kept, data=data)
    return data, f"study-{study.pk}-rev{study.revision_number}-{fmt}.dcm"


def study_export_rtstruct(*, study_id: int, user: Any) -> tuple[bytes, str]:
    """Kept lesions as a DICOM RT Structure Set referencing the original planning CT.

    409 ``not_ready`` (no contour), ``upload_missing`` (no kept upload),
    ``upload_unreadable`` / ``upload_mismatch`` (the upload's CT cannot be read or is
    not the study's CT grid), ``no_lesions`` (nothing kept).
    """
    return _export_dicom(study_id=study_id, user=user, fmt="rtstruct")


def study_export_seg(*, study_id: int, user: Any) -> tuple[bytes, str]:
    """Kept lesions as a DICOM Segmentation (one segment each) on the original planning CT.

    Same errors as ``study_export_rtstruct``.
    """
    return _export_dicom(study_id=study_id, user=user, fmt="seg")


EXPORTERS: dict[str, Callable[..., tuple[bytes, str]]] = {
    "nifti": study_export_nifti,
    "rtstruct": study_export_rtstruct,
    "seg": study_export_seg,
}

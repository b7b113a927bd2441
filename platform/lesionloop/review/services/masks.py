"""Saving an edited mask: decode, diff against the current revision, lesions follow."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from lesionloop.audit.services import audit_record
from lesionloop.core.exceptions import Conflict, DomainError
from lesionloop.studies import storage
from lesionloop.studies.models import Study
from lesionloop.studies.selectors import MODEL_VERSION_DETAILS
from ml.lesions import label_stats
from ml.lesions.voxels import Voxels, nonzero_voxels, voxel_changes

from ..models import Lesion, MaskRevision
from ._common import (
    _LESION_FIELDS,
    SIZE_FIELDS,
    _denormalise_from,
    _lock,
    _require_editable,
    _shape,
    _size_cleared,
    _spacing,
)
from .leases import _lease_hold
from .revisions import current_voxels, mask_revision_create

# Inflate a mask this many bytes at a time into its own buffer: one call for the whole
# mask grows a chain of blocks and then copies them into the result, three times the
# mask's size in fresh memory (page faults: a third of a save's time on the lite grid).
_INFLATE_CHUNK = 1 << 18


def _inflate(body: bytes, limit: int) -> tuple[np.ndarray, bool]:
    """At most ``limit`` bytes (uint8) inflated from the gzip ``body``, and whether
    ``body`` is exactly one complete gzip member (nothing after it). Raises ``zlib.error``."""
    out = np.empty(limit, dtype=np.uint8)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending, size = body, 0
    while size < limit:
        chunk = inflater.decompress(pending, min(_INFLATE_CHUNK, limit - size))
        out[size : size + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        size += len(chunk)
        pending = inflater.unconsumed_tail
        if inflater.eof or not chunk:
            break
    return out[:size], inflater.eof and not inflater.unused_data


def _decode_mask(
    body: bytes, *, shape: tuple[int, int, int], gzipped: bool
) -> tuple[np.ndarray, Voxels, bool]:
    """The mask, its nonzero voxels, and whether ``body`` is exactly one complete gzip
    member of it."""
    expected = int(np.prod(shape)) * 2
    raw: bytes | np.ndarray = body
    clean_gzip = False
    if gzipped or body[:2] == b"\x1f\x8b":
        try:
            raw, clean_gzip = _inflate(body, expected + 1)  # never beyond one mask
        except zlib.error as exc:
            raise DomainError(f"The mask is not valid gzip ({exc}).", code="bad_mask") from None
    if len(raw) != expected:
        raise DomainError(
            f"The mask must be {expected} bytes of uint16 {list(shape)} (D,H,W); got "
            f"{len(raw) if len(raw) <= expected else 'more'} bytes.",
            code="bad_mask",
        )
    mask = np.frombuffer(raw, dtype="<u2").reshape(shape)
    voxels = nonzero_voxels(mask)
    _refuse_too_many_labels(voxels[1])
    return mask, voxels, clean_gzip


def _refuse_too_many_labels(lesion_voxels: np.ndarray) -> None:
    """400 ``bad_mask`` when the labels of a mask's nonzero voxels hold more distinct
    labels than ``LESIONLOOP_MAX_LESION_LABELS`` (each label becomes a lesion row)."""
    limit = settings.LESIONLOOP_MAX_LESION_LABELS
    n_labels = int(np.count_nonzero(np.bincount(lesion_voxels))) if lesion_voxels.size else 0
    if n_labels > limit:
        raise DomainError(
            f"The mask holds {n_labels} distinct lesion labels; at most {limit} are allowed "
            "(is it a label map at all?). Nothing was saved.",
            code="bad_mask",
            extra={"labels": n_labels, "max_labels": limit},
        )


def _require_sane_grid(spacing: tuple[float, float, float]) -> None:
    """409 ``bad_grid`` when the study's spacing cannot measure lesions (not finite or
    not positive): every volume would be NaN. Such studies are refused at ingest now."""
    if not all(np.isfinite(v) and v > 0 for v in spacing):
        raise Conflict(
            f"The study's grid spacing {list(spacing)} mm is not usable; lesion volumes "
            "cannot be measured. Nothing was saved; ingest the study again.",
            code="bad_grid",
        )


def _changed_region(
    shape: tuple[int, int, int],
    diff: np.ndarray,
    changed: set[int],
    existing: dict[int, Lesion],
    old_labels: set[int],
) -> tuple[slice, slice, slice]:
    """A box holding every voxel of the changed labels in the new mask.

    ``diff``: the flat indices of the voxels that changed; ``old_labels``: the labels of
    the old mask. A changed label's voxels in the new mask either did not change (so
    they lie in its old box, kept on its lesion row) or changed (so they lie in the box
    of the diff). Without a row for some label, the whole volume.
    """
    full = tuple(slice(0, n) for n in shape)
    if diff.size == 0:
        return full  # type: ignore[return-value]
    boxes = [(int(c.min()), int(c.max()) + 1) for c in np.unravel_index(diff, shape)]
    for label in changed:
        lesion = existing.get(label)
        if lesion is None or len(lesion.bbox or []) != 6:
            if lesion is None and label not in old_labels:
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
    user: User,
    body: bytes,
    gzipped: bool,
    base_revision: int,
    reason: str = "",
    client: str = "",
) -> tuple[MaskRevision, list[Lesion]]:
    """Save an edited mask as a new revision and update the lesions from the diff.

    Labels new in the mask become ``added`` lesions, labels whose voxels changed become
    ``edited`` (``added`` ones stay ``added``), labels erased entirely become
    ``rejected``. A rejected lesion's contour is frozen: a save that paints into or
    erases from a rejected lesion's label is refused whole (409 ``lesion_rejected``,
    ``labels``), so a save never turns a rejected lesion into a kept one.

    ``base_revision`` is the revision the edit started from (the API reads it from
    ``If-Match``); a save on any other revision is refused.

    400 ``bad_mask``; 409 ``approved`` / ``not_ready`` / ``stale_revision`` / ``leased`` /
    ``lesion_rejected``.
    """
    with transaction.atomic():
        study = _lock(study_id)
        _require_editable(study)
        if base_revision != study.revision_number:
            raise _stale_revision(study, base_revision)
        _lease_hold(study, user, client, active=True)
        _require_sane_grid(_spacing(study))
        new, new_voxels, clean_gzip = _decode_mask(body, shape=_shape(study), gzipped=gzipped)
        old_voxels = current_voxels(study)
        diff, before, after = voxel_changes(old_voxels, new_voxels)
        changed = {int(v) for v in np.unique(np.concatenate([before, after]))} - {0}
        existing = {les.label: les for les in study.lesions.select_for_update()} if changed else {}
        _refuse_rejected_changes(existing, changed)
        revision = mask_revision_create(
            study=study,
            # The editor's own gzip is kept as sent (verified above): no re-compression.
            data_gz=body if clean_gzip else storage.gzip_array(new, dtype="uint16"),
            author=user,
            reason=reason or "edit",
            voxels=new_voxels,
            save_study=False,
        )
        if changed:
            _lesions_follow_edit(
                study=study,
                user=user,
                new=new,
                region=_changed_region(
                    new.shape, diff, changed, existing, {int(v) for v in np.unique(old_voxels[1])}
                ),
                changed=changed,
                existing=existing,
                revision=revision,
            )
        lesions = list(
            study.lesions.select_related("model_version", "decided_by")
            .defer(*MODEL_VERSION_DETAILS)
            .order_by("volume_mm3", "id")
        )
        _denormalise_from(study, lesions)
        # One UPDATE for the new revision number (kept unsaved by mask_revision_create)
        # and the worklist columns.
        study.save(
            update_fields=["revision_number", "lesion_count", "smallest_lesion_mm3", "updated_at"]
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
    user: User,
    new: np.ndarray,
    region: tuple[slice, slice, slice],
    changed: set[int],
    existing: dict[int, Lesion],
    revision: MaskRevision,
) -> None:
    """Update the rows of the changed labels from the new mask (study locked); their
    voxels lie in ``region``."""
    stats = _stats_in_region(new, _spacing(study), region, only=sorted(changed), prob=_prob(study))
    now = timezone.now()
    summary: dict[str, list[int]] = {"added": [], "edited": [], "rejected": []}
    for label in sorted(changed):
        lesion = existing.get(label)
        row = stats.get(label)
        if row is None:
            if lesion is None:
                continue
            lesion_erased(lesion)
            lesion.decided_by, lesion.decided_at = user, now
            lesion.save(update_fields=[*ERASED_FIELDS, "decided_by", "decided_at"])
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


ERASED_FIELDS = ("decision", *SIZE_FIELDS)


def lesion_erased(lesion: Lesion) -> None:
    """Make a row match a mask that has no voxel of its label left (not saved here).

    Rejected, 0 voxels / 0 mm3, no diameters (null). Kept as they were: the centroid, box
    and largest slice (where the lesion stood, so the viewer can still go there) and the
    model's probability and disagreement (what the model said of what it proposed).
    """
    lesion.decision = Lesion.Decision.REJECTED
    _size_cleared(lesion)


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

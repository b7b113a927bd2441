"""Mask revisions: the gzip record of every working mask, and its sparse working copy."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from django.contrib.auth.models import User

from lesionloop.audit.services import audit_record
from lesionloop.registry.models import ModelVersion
from lesionloop.studies import storage
from lesionloop.studies.models import Study
from ml.lesions.voxels import (
    Voxels,
    dense_from_voxels,
    nonzero_voxels,
    voxels_from_bytes,
    voxels_to_bytes,
)

from ..models import MaskRevision
from ._common import _shape


def mask_revision_create(
    *,
    study: Study,
    data_gz: bytes,
    author: User | None = None,
    model_version: ModelVersion | None = None,
    reason: str = "",
    voxels: Voxels | None = None,
    save_study: bool = True,
) -> MaskRevision:
    """Keep ``data_gz`` (gzip of raw uint16 (D,H,W)) as the next revision. Study locked.

    ``voxels``, the nonzero voxels of the mask (``ml.lesions.voxels``) when the caller
    has them at hand, are also kept as the working copy, so the next save diffs against
    them without inflating the gzip. ``save_study=False``: ``study.revision_number`` is
    set but not saved; the caller saves it in the same transaction (one UPDATE less).
    """
    number = study.revision_number + 1
    path = storage.study_dir(study.pk) / "revisions" / f"{number}.u16.gz"
    storage.atomic_write_bytes(path, data_gz)
    sha256 = hashlib.sha256(data_gz).hexdigest()
    if voxels is not None:
        _working_copy_write(study, number, sha256, voxels)
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
        sha256=sha256,
        author=author,
        author_label=label,
        model_version=model_version,
        reason=reason[:500],
    )
    study.revision_number = number
    if save_study:
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
    """Where the working copy of revision ``number`` is kept."""
    return storage.study_dir(study.pk) / "revisions" / f"working-{number}.vox"


def _working_copy_write(study: Study, number: int, sha256: str, voxels: Voxels) -> None:
    """The nonzero voxels of revision ``number`` (a cache: the gzip revision stays the
    record), after the sha256 of that revision's gzip: a copy left by a save that rolled
    back never passes for a later revision of the same number. A few kB instead of the
    whole raw volume (10 MB on the lite grid)."""
    path = _working_copy_path(study, number)
    storage.atomic_write_bytes(path, bytes.fromhex(sha256) + voxels_to_bytes(voxels))
    for old in path.parent.glob("working-*"):
        if old != path:
            old.unlink(missing_ok=True)


def current_voxels(study: Study) -> Voxels:
    """The nonzero voxels of the working mask (``ml.lesions.voxels``): from the working
    copy when it is kept, well-formed and made from the current revision's gzip, else
    from that gzip; none before the first revision."""
    if not study.revision_number:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint16)
    revision = _current_revision(study)
    kept = _working_copy_read(study, revision)
    return kept if kept is not None else nonzero_voxels(_revision_mask(study, revision))


def current_mask(study: Study) -> np.ndarray:
    """The working mask, uint16 (D, H, W): the current revision (from its working copy
    when kept), zeros before the first one."""
    shape = _shape(study)
    if not study.revision_number:
        return np.zeros(shape, dtype=np.uint16)
    revision = _current_revision(study)
    kept = _working_copy_read(study, revision)
    return dense_from_voxels(kept, shape) if kept is not None else _revision_mask(study, revision)


def _current_revision(study: Study) -> MaskRevision:
    return MaskRevision.objects.only("number", "file", "sha256").get(
        study=study, number=study.revision_number
    )


def _working_copy_read(study: Study, revision: MaskRevision) -> Voxels | None:
    """The working copy of ``revision``, or None when missing, malformed or made from
    other bytes than the revision's gzip."""
    try:
        data = _working_copy_path(study, revision.number).read_bytes()
    except FileNotFoundError:
        return None
    if data[:32] != bytes.fromhex(revision.sha256):
        return None
    return voxels_from_bytes(data[32:], int(np.prod(_shape(study))))


def _revision_mask(study: Study, revision: MaskRevision) -> np.ndarray:
    """The revision's gzip, inflated: uint16 (D, H, W)."""
    return storage.read_gz_array(
        storage.absolute(revision.file), dtype="uint16", shape=_shape(study)
    )

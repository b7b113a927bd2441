"""Mask revisions: the gzip record of every working mask, and its raw working copy."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from django.contrib.auth.models import User

from lesionloop.audit.services import audit_record
from lesionloop.registry.models import ModelVersion
from lesionloop.studies import storage
from lesionloop.studies.models import Study

from ..models import MaskRevision
from ._common import _shape


def mask_revision_create(
    *,
    study: Study,
    data_gz: bytes,
    author: User | None = None,
    model_version: ModelVersion | None = None,
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
    """Where the raw working copy of revision ``number`` is kept."""
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
    """The working mask, uint16 (D, H, W): the current revision (its raw copy when kept),
    zeros before the first one."""
    if not study.revision_number:
        return np.zeros(_shape(study), dtype=np.uint16)
    shape = _shape(study)
    cached = _working_copy_path(study, study.revision_number)
    if cached.exists() and cached.stat().st_size == int(np.prod(shape)) * 2:
        return np.fromfile(cached, dtype="<u2").reshape(shape)
    revision = MaskRevision.objects.get(study=study, number=study.revision_number)
    return storage.read_gz_array(storage.absolute(revision.file), dtype="uint16", shape=shape)

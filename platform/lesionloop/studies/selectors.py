"""Reads for studies: the worklist, one study, and training cases for platform B."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.db.models import Q, QuerySet

from lesionloop.core.exceptions import DomainError

from . import storage
from .models import Study

# A model version's JSON columns that no study or lesion read shows (the training split
# grows with every retraining): left unread when a version comes with its study or lesion.
MODEL_VERSION_DETAILS = tuple(
    f"model_version__{name}"
    for name in ("weights", "train_study_ids", "val_study_ids", "hyperparameters", "metrics")
)
# A worklist row shows neither the grid nor the ingest report nor the DICOM identifiers.
WORKLIST_DEFERRED = ("grid", "report", "dicom", *MODEL_VERSION_DETAILS)

# API ordering name -> ORDER BY; every one ends on a unique column so pages are stable.
WORKLIST_ORDERINGS: dict[str, tuple[str, ...]] = {
    "-priority": ("-priority", "id"),
    "priority": ("priority", "id"),
    "created_at": ("created_at", "id"),
    "-created_at": ("-created_at", "-id"),
    "smallest_lesion_mm3": ("smallest_lesion_mm3", "id"),
    "-smallest_lesion_mm3": ("-smallest_lesion_mm3", "-id"),
    "lesion_count": ("lesion_count", "id"),
    "-lesion_count": ("-lesion_count", "-id"),
    "status": ("status", "id"),
    "-status": ("-status", "-id"),
}


def study_worklist(
    *, status: str | None = None, search: str | None = None, ordering: str | None = None
) -> QuerySet[Study]:
    """The worklist rows: one query per page whatever the page size (the JSON columns a
    row does not show are left unread: ``WORKLIST_DEFERRED``)."""
    ordering = ordering or "-priority"
    if ordering not in WORKLIST_ORDERINGS:
        raise DomainError(
            f"ordering must be one of {', '.join(WORKLIST_ORDERINGS)}.", code="bad_ordering"
        )
    qs = Study.objects.select_related("model_version", "lease_user", "approved_by").defer(
        *WORKLIST_DEFERRED
    )
    if status:
        wanted = [s.strip() for s in status.split(",") if s.strip()]
        unknown = sorted(set(wanted) - set(Study.Status.values))
        if unknown:
            raise DomainError(
                f"unknown status {', '.join(unknown)}; choose from {', '.join(Study.Status.values)}.",
                code="bad_status",
            )
        qs = qs.filter(status__in=wanted)
    if search:
        term = search.strip()
        cond = Q(patient_label__icontains=term) | Q(description__icontains=term)
        if term.isascii() and term.isdigit() and len(term) <= 18:
            cond |= Q(pk=int(term))
        qs = qs.filter(cond)
    return qs.order_by(*WORKLIST_ORDERINGS[ordering])


# What the image, mask and lesion endpoints read of a study: one narrow query (the full
# ``study_get`` joins three tables and costs four times the CPU to build and read).
STUDY_IMAGE_FIELDS = ("id", "status", "prepared", "grid", "revision_number")


def study_image_get(*, study_id: int) -> Study:
    """The study with only ``STUDY_IMAGE_FIELDS`` loaded (status, prepared flag, grid,
    revision number; anything else is read on access). 404 ``not_found``."""
    study = Study.objects.only(*STUDY_IMAGE_FIELDS).filter(pk=study_id).first()
    if study is None:
        raise DomainError("No such study.", code="not_found", status_code=404)
    return study


def study_get(*, study_id: int) -> Study:
    study = (
        Study.objects.select_related("model_version", "lease_user", "approved_by")
        .defer(*MODEL_VERSION_DETAILS)
        .filter(pk=study_id)
        .first()
    )
    if study is None:
        raise DomainError("No such study.", code="not_found", status_code=404)
    return study


@dataclass(frozen=True)
class TrainingCase:
    """An approved, training-eligible study as training reads it.

    ``training_dir`` is a complete prepared-study directory (hard links to the prepared
    files plus the approved ``ground_truth.npy``): pass it straight to
    ``ml.training.train_ensemble(train_dirs=...)``. ``prepared_dir`` is the study's own
    (read-only) prepared dir; ``ground_truth_path`` the approved 0/1 uint8 mask.
    """

    study_id: int
    approval_id: int
    approved_at: datetime
    prepared_dir: Path
    training_dir: Path
    ground_truth_path: Path
    revision: int


def training_cases() -> list[TrainingCase]:
    """Approved training-eligible studies, oldest approval first (their live approval)."""
    from lesionloop.review.models import Approval

    approvals = (
        Approval.objects.filter(
            superseded=False,
            training_eligible=True,
            study__status=Study.Status.APPROVED,
            study__training_eligible=True,
        )
        .select_related("revision")
        .order_by("approved_at", "id")
    )
    cases = []
    for a in approvals:
        snapshot = storage.absolute(a.snapshot_dir)
        cases.append(
            TrainingCase(
                study_id=a.study_id,
                approval_id=a.pk,
                approved_at=a.approved_at,
                prepared_dir=storage.prepared_dir(a.study_id),
                training_dir=snapshot,
                ground_truth_path=snapshot / "ground_truth.npy",
                revision=a.revision.number,
            )
        )
    return cases

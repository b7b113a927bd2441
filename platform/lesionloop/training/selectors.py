"""Reads for training: runs, training cases, the validation split."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from .models import SplitAssignment, TrainingRun


@dataclass(frozen=True)
class CaseRecord:
    """One approved, training-eligible study as training sees it."""

    study_id: int
    key: str  # stable identity of the study (the DICOM study UID when known)
    directory: Path  # a prepared-study dir (model_input.npy, study.json)
    ground_truth: Path  # the approved mask, uint8 (D, H, W) on the model grid
    approved_at: datetime | None


def _get(item: Any, *names: str) -> Any:
    for name in names:
        if isinstance(item, dict):
            if item.get(name) is not None:
                return item[name]
        elif getattr(item, name, None) is not None:
            return getattr(item, name)
    return None


def _path(value: Any) -> Path | None:
    if value is None or value == "":
        return None
    path = Path(str(value))
    return path if path.is_absolute() else Path(settings.STORAGE_ROOT) / path


def case_record(item: Any) -> CaseRecord | None:
    """Adapt one row of ``studies.selectors.training_cases()`` (object or dict)."""
    study = _get(item, "study")
    study_id = _get(item, "study_id") or _get(study, "pk") or _get(item, "pk", "id")
    directory = _path(_get(item, "snapshot_dir", "training_dir", "case_dir", "prepared_dir", "dir"))
    if study_id is None or directory is None:
        return None
    gt = _path(_get(item, "ground_truth_path", "ground_truth", "gt_path"))
    if gt is None or gt.is_dir():
        gt = directory / "ground_truth.npy"
    dicom = _get(item, "dicom") or _get(study, "dicom") or {}
    uid = _get(item, "study_uid") or (dicom.get("study_uid") if isinstance(dicom, dict) else None)
    approved_at = _get(item, "approved_at") or _get(study, "approved_at")
    return CaseRecord(int(study_id), str(uid or study_id), directory, gt, approved_at)


def training_case_records() -> list[CaseRecord]:
    """Approved, training-eligible studies whose files exist, in study-id order."""
    from lesionloop.studies.models import Study
    from lesionloop.studies.selectors import training_cases

    records = {}
    for item in training_cases():
        record = case_record(item)
        if record is None or not (record.directory / "model_input.npy").exists():
            continue
        if not record.ground_truth.exists():
            continue
        records[record.study_id] = record  # the latest approval of a study wins
    # The key is the DICOM study UID when there is one: stable across databases.
    uids = {
        pk: (dicom or {}).get("study_uid")
        for pk, dicom in Study.objects.filter(pk__in=list(records)).values_list("pk", "dicom")
    }
    return [
        replace(records[k], key=uids[k]) if uids.get(k) and records[k].key == str(k) else records[k]
        for k in sorted(records)
    ]


def validation_study_ids() -> list[int]:
    return list(
        SplitAssignment.objects.filter(split=SplitAssignment.Split.VALIDATION).values_list(
            "study_id", flat=True
        )
    )


def training_run_list() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related("started_by", "model_version")


def training_run_get(*, run_id: int) -> TrainingRun:
    return training_run_list().get(pk=run_id)


def training_run_open() -> TrainingRun | None:
    return TrainingRun.objects.filter(status__in=TrainingRun.OPEN_STATUSES).first()


def eligible_approvals_since_last_run() -> tuple[int, int]:
    """(eligible cases now, how many are new since the last run was requested)."""
    records = training_case_records()
    last = TrainingRun.objects.order_by("-created_at", "-id").first()
    if last is None:
        return len(records), len(records)
    if all(r.approved_at is not None for r in records):
        return len(records), sum(r.approved_at > last.created_at for r in records)
    return len(records), max(0, len(records) - last.eligible_count)

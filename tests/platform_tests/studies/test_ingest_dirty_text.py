"""DICOM text with NUL and other junk is cleaned on its way to the database, and the
failure path itself cannot fail: a study never stays ``processing``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DataError

from lesionloop.loop import flows
from lesionloop.studies import services, storage
from lesionloop.studies.models import Job, Study

pytestmark = pytest.mark.django_db


def _dirty_upload(case: Path, tmp_path: Path, tags: dict[str, str]) -> list[SimpleUploadedFile]:
    out = tmp_path / "dirty"
    shutil.copytree(case / "dicom", out)
    files = []
    for path in sorted(out.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        for key, value in tags.items():
            setattr(ds, key, value)
        ds.save_as(path)
        files.append(SimpleUploadedFile(path.name, path.read_bytes()))
    return files


def _ingest(study_id: int) -> Study:
    job = Job.objects.get(study_id=study_id, kind="ingest")
    flows.study_ingest(job_id=job.pk)
    return Study.objects.get(pk=study_id)


@pytest.mark.filterwarnings("ignore")
def test_nul_bytes_in_dicom_text_are_cleaned(
    cast: Any, synthetic_case: Path, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    files = _dirty_upload(
        synthetic_case,
        tmp_path,
        {
            "PatientID": "PAT\x00001\x01",
            "PatientName": "DOE\x00^JOHN",
            "StudyDescription": "SRS\x00 HEAD" + "x" * 300,
        },
    )
    with django_capture_on_commit_callbacks(execute=False):
        study = services.study_upload(files=files, user=cast.clinician)
        study = _ingest(study.pk)
    assert study.status == "awaiting_model", study.status_reason
    assert study.prepared and storage.prepared_dir(study.pk).exists()
    assert study.patient_label == "PAT001"
    assert study.description.startswith("SRS HEAD") and len(study.description) == 255
    assert study.dicom["patient_name"] == "DOE^JOHN"
    assert "\x00" not in str(study.dicom) + str(study.report)


def _failing_once(real: Any, fails: list[int]) -> Any:
    def audit(**kwargs: Any) -> Any:
        if kwargs.get("event_type") == "study_failed" and fails[0] > 0:
            fails[0] -= 1
            raise DataError("injected: the failure could not be stored")
        return real(**kwargs)

    return audit


@pytest.mark.parametrize(
    ("fails", "audited"),
    [(0, "the reason"), (1, services.SAFE_FAILURE_REASON), (2, None)],
    ids=["stores-reason", "falls-back-to-safe-reason", "audit-down-study-still-failed"],
)
def test_the_failure_handler_cannot_fail(
    cast: Any, monkeypatch: Any, fails: int, audited: str | None
) -> None:
    study = Study.objects.create(created_by=cast.clinician, status="processing", prepared=True)
    storage.prepared_dir(study.pk).mkdir(parents=True)
    job = Job.objects.create(study=study, kind="ingest", state="running")
    monkeypatch.setattr(services, "audit_record", _failing_once(services.audit_record, [fails]))
    services._study_fail(
        study_id=study.pk, reason="the reason\x00", job=job, unprepare=True, code="internal"
    )
    study.refresh_from_db()
    job.refresh_from_db()
    assert study.status == "failed" and not study.prepared
    assert not storage.prepared_dir(study.pk).exists()
    expected = "the reason" if fails == 0 else services.SAFE_FAILURE_REASON
    assert study.status_reason == expected and job.state == "failed"
    events = list(study.audit_events.filter(event_type="study_failed"))
    assert [e.payload["reason"] for e in events] == ([audited] if audited else [])


def test_a_failure_while_storing_the_ingest_fails_the_study(
    cast: Any, monkeypatch: Any, tmp_path: Path
) -> None:
    """A database error after the prepared dir is published: failed, files removed."""
    study = Study.objects.create(created_by=cast.clinician, status="received")
    job = Job.objects.create(study=study, kind="ingest")

    def fake_prepare(*, study_id: int, **_: Any) -> dict[str, Any]:
        storage.prepared_dir(study_id).mkdir(parents=True)
        return {"grid": {}, "dicom": {}}

    def broken_commit(**_: Any) -> Any:
        raise DataError("injected: invalid byte sequence")

    monkeypatch.setattr(services, "_prepare", fake_prepare)
    monkeypatch.setattr(services, "_ingest_commit", broken_commit)
    assert flows.study_ingest(job_id=job.pk) is None
    study.refresh_from_db()
    assert study.status == "failed" and not study.prepared
    assert "DataError" in study.status_reason
    assert not storage.prepared_dir(study.pk).exists()
    assert Job.objects.get(pk=job.pk).state == "failed"

"""POST /api/studies/: upload answers 202 at once; ingest runs as a job."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from lesionloop.loop import flows
from lesionloop.studies import storage
from lesionloop.studies.models import Job, Study

pytestmark = pytest.mark.django_db


def dicom_files(case: Path) -> list[SimpleUploadedFile]:
    paths = sorted((case / "dicom").rglob("*.dcm"))
    return [SimpleUploadedFile(p.name, p.read_bytes()) for p in paths]


def dicom_zip(case: Path) -> SimpleUploadedFile:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted((case / "dicom").rglob("*.dcm")):
            zf.write(p, p.relative_to(case).as_posix())
    return SimpleUploadedFile("study.zip", buf.getvalue(), content_type="application/zip")


def upload(api: Any, user: Any, files: list[Any], **extra: Any) -> Any:
    return api(user).post("/api/studies/", {"files": files, **extra}, format="multipart")


def run_ingest(study_id: int) -> Study:
    job = Job.objects.get(study_id=study_id, kind="ingest")
    flows.study_ingest(job_id=job.pk)
    return Study.objects.get(pk=study_id)


@pytest.mark.parametrize("as_zip", [False, True], ids=["files", "zip"])
def test_upload_then_ingest_waits_for_a_model(
    api: Any, cast: Any, synthetic_case: Path, as_zip: bool, django_capture_on_commit_callbacks: Any
) -> None:
    files = [dicom_zip(synthetic_case)] if as_zip else dicom_files(synthetic_case)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(api, cast.clinician, files)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "received" and body["id"]
    assert len(callbacks) == 1  # the ingest message is sent only after commit
    up = storage.upload_dir(body["id"])
    assert (up / "archive.zip").exists() == as_zip
    assert not any((storage.storage_root() / "incoming").iterdir())  # moved, not copied
    study = run_ingest(body["id"])
    assert study.status == "awaiting_model", study.status_reason
    assert study.prepared and study.grid["preset"] == "tiny"
    assert study.registration_ok is True
    assert study.patient_label == "LLSYN000001"
    assert storage.display_file(study.pk, "mr").exists()
    assert not list(storage.study_dir(study.pk).glob(".prepared.tmp-*"))
    assert Job.objects.get(study=study, kind="ingest").state == "succeeded"


def test_ingest_queues_presegmentation_when_a_model_is_active(
    api: Any, cast: Any, synthetic_case: Path, django_capture_on_commit_callbacks: Any
) -> None:
    from .helpers import model_version

    mv = model_version("v1", "active")
    with django_capture_on_commit_callbacks(execute=False):
        body = upload(api, cast.clinician, [dicom_zip(synthetic_case)]).json()
        study = run_ingest(body["id"])
    assert study.status == "processing"
    job = Job.objects.get(study=study, kind="presegment")
    assert job.model_version == mv and job.state == "queued"


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ([SimpleUploadedFile("x.dcm", b"this is not dicom" * 20)], {"not_dicom"}),
        ([SimpleUploadedFile("broken.zip", b"PK\x03\x04garbage")], {"bad_archive", "not_dicom"}),
    ],
    ids=["not-dicom", "broken-zip"],
)
def test_bad_input_fails_the_study_with_a_readable_reason(
    api: Any, cast: Any, files: list[Any], code: set[str], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        response = upload(api, cast.clinician, files)
    assert response.status_code == 202
    study = run_ingest(response.json()["id"])
    assert study.status == "failed"
    assert study.status_reason and "Traceback" not in study.status_reason
    assert not storage.prepared_dir(study.pk).exists()  # never a half-made study
    assert not list(storage.study_dir(study.pk).glob(".prepared.tmp-*"))
    event = study.audit_events.get(event_type="study_failed")
    assert event.payload["code"] in code
    detail = api(cast.clinician).get(f"/api/studies/{study.pk}/").json()
    assert detail["status"] == "failed" and detail["status_reason"] == study.status_reason


@pytest.mark.parametrize(
    ("user", "data", "status", "code"),
    [
        ("clinician", {}, 400, "no_files"),
        ("clinician", {"ground_truth": "gt"}, 403, None),
        ("auditor", {"files": "f"}, 403, None),
        ("nobody", {"files": "f"}, 403, None),
        (None, {"files": "f"}, 403, None),
    ],
)
def test_upload_refusals(
    api: Any, cast: Any, user: str | None, data: dict, status: int, code: str | None
) -> None:
    payload: dict[str, Any] = {}
    if "files" in data or "ground_truth" in data:
        payload["files"] = [SimpleUploadedFile("a.dcm", b"x" * 10)]
    if "ground_truth" in data:
        payload["ground_truth"] = SimpleUploadedFile("gt.nii.gz", b"x" * 10)
    response = api(getattr(cast, user) if user else None).post(
        "/api/studies/", payload, format="multipart"
    )
    assert response.status_code in ((401, 403) if user is None else (status,)), response.content
    body = response.json()
    assert "detail" in body
    if code:
        assert body["code"] == code
    assert not Study.objects.exists()


def test_upload_over_the_size_limit_is_refused(api: Any, cast: Any, settings: Any) -> None:
    settings.UPLOAD_MAX_BYTES = 2048
    response = upload(api, cast.clinician, [SimpleUploadedFile("a.dcm", b"x" * 4096)])
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert not Study.objects.exists()


def test_admin_upload_with_ground_truth_becomes_an_approved_case(
    api: Any, cast: Any, synthetic_case: Path, django_capture_on_commit_callbacks: Any
) -> None:
    gt = SimpleUploadedFile("gt.nii.gz", (synthetic_case / "ground_truth_ct.nii.gz").read_bytes())
    with django_capture_on_commit_callbacks(execute=False):
        response = upload(api, cast.admin, [dicom_zip(synthetic_case)], ground_truth=gt)
        assert response.status_code == 202
        study = run_ingest(response.json()["id"])
    assert study.status == "approved" and study.approved_by == cast.admin
    assert study.revisions.get().reason == "ground truth import"


def test_too_many_files_is_a_clear_400(api: Any, cast: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    files = [SimpleUploadedFile(f"{i}.dcm", b"x" * 10) for i in range(5)]
    response = upload(api, cast.clinician, files)
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_files" and "zip" in response.json()["detail"]
    assert not Study.objects.exists()


def test_streaming_handler_stops_at_the_limit(settings: Any, tmp_path: Path) -> None:
    from lesionloop.core.exceptions import DomainError
    from lesionloop.studies.uploads import StorageUploadHandler

    settings.UPLOAD_MAX_BYTES = 1500
    staging = tmp_path / "staging"
    staging.mkdir()
    handler = StorageUploadHandler(staging)
    handler.new_file("files", "../../evil name.dcm", "application/dicom", None)
    handler.receive_data_chunk(b"x" * 1000, 0)
    with pytest.raises(DomainError) as caught:
        handler.receive_data_chunk(b"x" * 1000, 1000)
    assert caught.value.status_code == 413
    assert [p.name for p in staging.iterdir()] == ["00001_evil_name.dcm"]


CSRF = "k" * 32  # an unmasked 32-character secret: Django accepts it in cookie and header


def _session_client(cast: Any, csrf: bool) -> Any:
    from django.conf import settings as django_settings
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.clinician)
    client.cookies[django_settings.CSRF_COOKIE_NAME] = CSRF
    return client, ({"HTTP_X_CSRFTOKEN": CSRF} if csrf else {})


# (case, CSRF header sent, files, UPLOAD_MAX_BYTES, status, code)
SESSION_UPLOADS = [
    ("a study", True, "zip", None, 202, None),
    ("no CSRF token", False, "zip", None, 403, None),
    ("over the size limit", True, "zip", 2048, 413, "too_large"),
    ("too many files", True, "many", None, 400, "too_many_files"),
]


@pytest.mark.parametrize(
    ("name", "csrf", "files", "limit", "status", "code"),
    SESSION_UPLOADS,
    ids=[c[0] for c in SESSION_UPLOADS],
)
def test_upload_with_a_browser_session(
    cast: Any,
    synthetic_case: Path,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    name: str,
    csrf: bool,
    files: str,
    limit: int | None,
    status: int,
    code: str | None,
) -> None:
    """With a session cookie the CSRF check reads the multipart body before the view: the
    files must still stream into staging (a 500 here before), and every refusal leaves no
    study and no staged file behind."""
    if limit is not None:
        settings.UPLOAD_MAX_BYTES = limit
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    client, headers = _session_client(cast, csrf)
    payload = (
        [dicom_zip(synthetic_case)]
        if files == "zip"
        else [SimpleUploadedFile(f"{i}.dcm", b"x" * 10) for i in range(5)]
    )
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/api/studies/", {"files": payload}, **headers)
    assert response.status_code == status, response.content
    body = response.json()
    if status == 202:
        assert body["status"] == "received"
        assert (storage.upload_dir(body["id"]) / "archive.zip").exists()
    else:
        assert "detail" in body and (code is None or body["code"] == code)
        assert not Study.objects.exists()
    incoming = storage.storage_root() / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir())

"""One study from upload to export through the API, and the trail it leaves."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from lesionloop.loop import flows
from lesionloop.studies import services
from lesionloop.studies.models import Job
from tests.platform_tests.studies.helpers import model_version, tiny_model_dir

pytestmark = pytest.mark.django_db


def test_upload_review_approve_export(
    api: Any,
    cast: Any,
    synthetic_case: Path,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from ml.inference import EnsemblePredictor

    tiny_model_dir(Path(settings.STORAGE_ROOT) / "models" / "v1")
    model_version("v1", "active", weights_dir="models/v1")
    real = EnsemblePredictor.from_dir(Path(settings.STORAGE_ROOT) / "models" / "v1")

    class Fast:
        """The real predictor's lesion listing on a made-up probability map (fast)."""

        def predict(self, model_input: np.ndarray, spacing_mm: Any) -> Any:
            d, h, w = model_input.shape[1:]
            p = np.zeros((d, h, w), np.float32)
            p[d // 2 : d // 2 + 2, 20:24, 20:24] = 0.9
            p[d // 2, 40:41, 40:41] = 0.6
            return real.combine(p, p * 0.8, spacing_mm)

    monkeypatch.setattr(services, "_predictor", lambda mv: Fast())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted((synthetic_case / "dicom").rglob("*.dcm")):
            zf.write(p, p.relative_to(synthetic_case).as_posix())
    cora = api(cast.clinician)
    with django_capture_on_commit_callbacks(execute=False):
        sid = cora.post(
            "/api/studies/",
            {"files": [SimpleUploadedFile("s.zip", buf.getvalue())]},
            format="multipart",
        ).json()["id"]
        flows.study_ingest(job_id=Job.objects.get(study_id=sid, kind="ingest").pk)
        flows.study_presegment(job_id=Job.objects.get(study_id=sid, kind="presegment").pk)
    study = cora.get(f"/api/studies/{sid}/").json()
    assert study["status"] == "ready" and study["lesion_count"] == 2 and study["priority"] > 0
    assert cora.post(f"/api/studies/{sid}/lease/").status_code == 200
    lesions = cora.get(f"/api/studies/{sid}/lesions/").json()
    assert [row["label"] for row in lesions] == [1, 2]  # smallest first
    mask_response = cora.get(f"/api/studies/{sid}/mask/")
    d, h, w = study["grid"]["shape_dhw"]
    mask = (
        np.frombuffer(gzip.decompress(b"".join(mask_response.streaming_content)), "<u2")
        .reshape(d, h, w)
        .copy()
    )
    mask[mask == 1] = 0  # the clinician erases the small candidate
    mask[1, 5:7, 5:7] = 7  # and draws one the model missed
    saved = cora.put(
        f"/api/studies/{sid}/mask/",
        data=gzip.compress(mask.tobytes()),
        content_type="application/octet-stream",
        HTTP_CONTENT_ENCODING="gzip",
        HTTP_IF_MATCH=mask_response["ETag"],
        HTTP_X_REASON="missed lesion",
    )
    assert saved.status_code == 200, saved.content
    by_label = {row["label"]: row for row in saved.json()["lesions"]}
    assert by_label[1]["decision"] == "rejected" and by_label[7]["decision"] == "added"
    assert (
        cora.patch(
            f"/api/studies/{sid}/lesions/{by_label[2]['id']}/",
            {"decision": "accepted"},
            format="json",
        ).status_code
        == 200
    )
    approved = cora.post(f"/api/studies/{sid}/approve/", {"training_eligible": True}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    export = cora.get(f"/api/studies/{sid}/export/nifti")
    assert export.status_code == 200 and export.content[:2] == b"\x1f\x8b"
    events = [
        e["event_type"] for e in api(cast.auditor).get(f"/api/studies/{sid}/timeline/").json()
    ]
    expected = [
        "study_uploaded",
        "ingest_started",
        "ingest_done",
        "registration_checked",
        "presegment_queued",
        "presegment_started",
        "prediction_created",
        "mask_revision",
        "lease_taken",
        "mask_revision",
        "lesions_changed_by_edit",
        "lesion_decision",
        "study_approved",
        "study_exported",
    ]
    assert events == expected

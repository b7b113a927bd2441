"""Pre-segmentation jobs: real predictor once, then a stub predictor for the lifecycle."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from lesionloop.loop import flows
from lesionloop.studies import services, storage
from lesionloop.studies.models import Job, Prediction, Study

from .helpers import SHAPE, SPACING, labels_with_boxes, make_study, model_version, tiny_model_dir

pytestmark = pytest.mark.django_db


def test_real_predictor_presegments_an_imported_study(
    synthetic_case: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tiny_model_dir(Path(settings.STORAGE_ROOT) / "models" / "v1")
    mv = model_version("v1", "active", weights_dir="models/v1")
    with django_capture_on_commit_callbacks(execute=False):
        study = services.study_import(source=synthetic_case / "dicom")
    job = Job.objects.get(study=study, kind="presegment")
    flows.study_presegment(job_id=job.pk)
    study.refresh_from_db()
    assert study.status == "ready", study.status_reason
    assert study.model_version == mv and study.revision_number == 1
    prediction = Prediction.objects.get(study=study, model_version=mv)
    assert study.lesion_count == len(prediction.lesions) == study.lesions.count()
    assert (storage.absolute(prediction.directory) / "labels.u16.gz").exists()
    revision = study.revisions.get(number=1)
    assert revision.author is None and revision.author_label == "model v1"
    assert study.audit_events.filter(event_type="prediction_created", model_version=mv).exists()


class StubPredictor:
    """Two lesions at fixed places; probabilities chosen per instance."""

    def __init__(self, mean_prob: float = 0.5) -> None:
        self.mean_prob = mean_prob
        self.calls = 0

    def predict(self, model_input: np.ndarray, spacing_mm: Any) -> Any:
        self.calls += 1
        labels = labels_with_boxes([(2, 4, 4, 3, 5, 5), (4, 20, 20, 7, 26, 26)]).astype(np.int32)
        lesions = [
            SimpleNamespace(
                label=i,
                volume_vox=int((labels == i).sum()),
                volume_mm3=float((labels == i).sum() * np.prod(SPACING)),
                centroid_vox=(1.0, 2.0, 3.0),
                centroid_mm=(4.0, 6.0, 9.0),
                bbox=(0, 0, 0, 1, 1, 1),
                mean_prob=self.mean_prob,
                max_prob=0.9,
                disagreement=0.25,
            )
            for i in (1, 2)
        ]
        prob = np.full(SHAPE, 0.1, dtype=np.float32)
        return SimpleNamespace(labels=labels, lesions=lesions, ensemble_prob=prob)


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> StubPredictor:
    predictor = StubPredictor()
    monkeypatch.setattr(services, "_predictor", lambda mv: predictor)
    return predictor


def awaiting_study(mv: Any = None) -> Study:
    study = make_study(boxes=[], mv=mv)
    Study.objects.filter(pk=study.pk).update(status="awaiting_model")
    study.refresh_from_db()
    return study


def test_redelivered_message_is_harmless(
    stub: StubPredictor, django_capture_on_commit_callbacks: Any
) -> None:
    mv = model_version("v2", "active")
    study = awaiting_study()
    with django_capture_on_commit_callbacks(execute=False):
        assert services.studies_awaiting_model_enqueue() == 1
    job = Job.objects.get(study=study, kind="presegment")
    flows.study_presegment(job_id=job.pk)
    flows.study_presegment(job_id=job.pk)  # the broker delivered it twice
    assert stub.calls == 1
    study.refresh_from_db()
    assert study.status == "ready" and study.model_version == mv
    assert study.lesion_count == 2 and study.revision_number == 2
    # priority: disagreement 0.25 x2 + 2 x uncertainty 1.0 for each small lesion
    assert study.priority == pytest.approx(
        0.5 + 2.0 * sum(1 for v in study.lesions.values_list("volume_mm3", flat=True) if v < 65.45)
    )
    job.refresh_from_db()
    assert job.state == "succeeded" and job.attempts == 1


def test_claim_is_atomic() -> None:
    study = make_study()
    job = Job.objects.create(study=study, kind="presegment")
    assert services.job_claim(job_id=job.pk) is not None
    assert services.job_claim(job_id=job.pk) is None


def test_promotion_repredicts_only_unreviewed_studies(
    stub: StubPredictor, cast: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from lesionloop.review.services import lease_take

    old = model_version("old", "retired")
    fresh = make_study(mv=old)
    reviewed = make_study(mv=old)
    lease_take(study_id=reviewed.pk, user=cast.clinician)  # opened: in_review
    new = model_version("new", "active")
    with django_capture_on_commit_callbacks(execute=False):
        assert services.studies_presegment_unreviewed(model_version_id=new.pk) == 1
        assert (
            services.studies_presegment_unreviewed(model_version_id=new.pk) == 0
        )  # queued already
    for job in Job.objects.filter(kind="presegment", state="queued"):
        flows.study_presegment(job_id=job.pk)
    fresh.refresh_from_db()
    reviewed.refresh_from_db()
    assert fresh.model_version == new and fresh.revision_number == 2
    assert reviewed.model_version == old and reviewed.status == "in_review"
    assert set(fresh.predictions.values_list("model_version__name", flat=True)) == {"old", "new"}
    assert fresh.revisions.get(number=1).model_version == old  # earlier prediction kept


def test_a_failing_model_fails_the_study_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    model_version("broken", "active", weights_dir="models/missing")
    study = awaiting_study()
    Study.objects.filter(pk=study.pk).update(revision_number=0)
    with django_capture_on_commit_callbacks(execute=False):
        services.studies_awaiting_model_enqueue()
    job = Job.objects.get(study=study, kind="presegment")
    flows.study_presegment(job_id=job.pk)
    study.refresh_from_db()
    job.refresh_from_db()
    assert job.state == "failed"
    assert study.status == "failed" and "manifest.json" in study.status_reason


def test_recovery_requeues_unfinished_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    study = make_study()
    queued = Job.objects.create(study=study, kind="ingest")
    running = Job.objects.create(study=study, kind="presegment", state="running")
    Job.objects.create(study=study, kind="ingest", state="succeeded")
    sent: list[tuple[int, str]] = []
    monkeypatch.setattr(
        services, "job_enqueue", lambda *, job_id, kind: sent.append((job_id, kind))
    )
    assert services.jobs_recover() == 2
    assert sorted(sent) == sorted([(queued.pk, "ingest"), (running.pk, "presegment")])
    running.refresh_from_db()
    assert running.state == "queued"


def test_recovery_hook_is_registered(settings: Any) -> None:
    assert "lesionloop.studies.services.jobs_recover" in settings.LESIONLOOP_RECOVERY_HOOKS

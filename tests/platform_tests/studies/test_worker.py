"""The actors on a real Dramatiq worker (StubBroker): ids in, duplicates harmless."""

from __future__ import annotations

from typing import Any

import dramatiq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from lesionloop.studies import services, tasks
from lesionloop.studies.models import Job


@pytest.mark.django_db(transaction=True)
def test_upload_runs_ingest_on_the_default_queue(cast: Any) -> None:
    broker = dramatiq.get_broker()
    broker.flush_all()
    assert tasks.study_ingest_task.queue_name == "default"
    assert tasks.study_presegment_task.queue_name == "gpu-infer"
    assert tasks.study_ingest_task.options["max_retries"] == 0
    study = services.study_upload(
        files=[SimpleUploadedFile("x.dcm", b"not dicom at all" * 10)], user=cast.clinician
    )
    job = Job.objects.get(study=study)
    tasks.study_ingest_task.send(job.pk)  # a duplicate delivery of the same job
    worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=1)
    worker.start()
    try:
        broker.join("default", timeout=60_000)
        worker.join()
    finally:
        worker.stop()
    study.refresh_from_db()
    assert study.status == "failed" and study.status_reason
    job.refresh_from_db()
    assert job.state == "failed" and job.attempts == 1

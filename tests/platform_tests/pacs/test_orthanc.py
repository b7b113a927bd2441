"""Against a real Orthanc: it sends a study to our listener, we send the approved
contours back (RTSTRUCT + SEG by C-STORE), and we fetch a study with C-FIND + C-MOVE."""

from __future__ import annotations

import shutil
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest

from lesionloop.audit.models import AuditEvent
from lesionloop.loop import flows
from lesionloop.pacs import services
from lesionloop.pacs.models import ReceivedStudy, RemoteNode
from lesionloop.studies import storage
from lesionloop.studies.models import Job, Study

from .peers import case_files

pytestmark = pytest.mark.django_db(transaction=True)


def node_for(server: Any, **flags: Any) -> RemoteNode:
    return services.remote_node_create(
        name="orthanc", ae_title=server.aet, host="127.0.0.1", port=server.dicom_port, **flags
    )


def test_orthanc_sends_a_study_and_gets_the_contours_back(
    start_listener: Any, orthanc: Any, synthetic_case: Path, cast: Any
) -> None:
    listener = start_listener(allowed_aets=["ORTHANC"])
    server = orthanc(listener.port)
    server.upload(case_files(synthetic_case))
    study_ids = server.get("/studies")
    assert len(study_ids) == 2  # the CT and the MR sessions
    for orthanc_study in study_ids:
        server.post("/modalities/lesionloop/store", {"Resources": [orthanc_study]})
    assert len(services.received_studies_complete(quiet_seconds=0)) == 2
    study = Study.objects.get()
    assert ReceivedStudy.objects.filter(study=study, calling_ae="ORTHANC").count() == 2
    # the ground truth travels beside the upload, as an admin's upload would carry it
    shutil.copy(
        synthetic_case / "ground_truth_ct.nii.gz",
        storage.upload_dir(study.pk) / "ground_truth.nii.gz",
    )
    flows.study_ingest(job_id=Job.objects.get(study=study, kind="ingest").pk)
    study.refresh_from_db()
    assert study.prepared and study.status == "approved", study.status_reason

    node = node_for(server, can_store=True)
    sends = services.dicom_send_create(study_id=study.pk, node=node, formats=["rtstruct", "seg"])
    for send in sends:
        done = services.dicom_send_execute(send_id=send.pk)
        assert done.status == "sent", done.error
        assert done.remote_status == "0x0000" and len(done.sop_instance_uids) == 1
    sent = {uid for s in sends for uid in s.__class__.objects.get(pk=s.pk).sop_instance_uids}
    found = {
        server.get(f"/instances/{i}/simplified-tags")["SOPInstanceUID"]: i
        for i in server.post("/tools/find", {"Level": "Instance", "Query": {"Modality": "RT*"}})
        + server.post("/tools/find", {"Level": "Instance", "Query": {"Modality": "SEG"}})
    }
    assert sent <= set(found)
    ct_series = study.dicom["ct_series_uid"]
    for uid in sent:
        ds = pydicom.dcmread(BytesIO(_file(server, found[uid])))
        if ds.Modality == "RTSTRUCT":
            series = (
                ds.ReferencedFrameOfReferenceSequence[0]
                .RTReferencedStudySequence[0]
                .RTReferencedSeriesSequence[0]
                .SeriesInstanceUID
            )
            assert series == ct_series
    events = AuditEvent.objects.filter(event_type="dicom_sent", study=study)
    assert events.count() == 2
    assert all(e.payload["destination"].startswith("ORTHANC@") for e in events)


def _file(server: Any, instance: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(f"{server.url}/instances/{instance}/file", timeout=30) as r:
        return r.read()


def test_a_study_is_fetched_from_orthanc_by_patient_id(
    start_listener: Any, orthanc: Any, synthetic_case: Path
) -> None:
    listener = start_listener()
    server = orthanc(listener.port)
    server.upload(case_files(synthetic_case))
    node = node_for(server, can_query=True)
    found = services.pacs_find(node=node, patient_id="LLSYN000001")
    assert len(found) == 2 and {f["PatientID"] for f in found} == {"LLSYN000001"}
    assert services.pacs_find(node=node, patient_id="NOBODY") == []
    retrieve = services.retrieve_create(node=node, patient_id="LLSYN000001")
    retrieve = services.retrieve_execute(retrieve_id=retrieve.pk)
    assert retrieve.status == "done", retrieve.error
    assert sum(s["completed"] for s in retrieve.studies) == len(case_files(synthetic_case))
    assert len(services.received_studies_complete(quiet_seconds=0)) == 2
    assert Job.objects.filter(kind="ingest", study=Study.objects.get()).count() == 1


def test_a_send_to_an_unreachable_node_is_retried_then_fails(cast: Any) -> None:
    from tests.platform_tests.studies.helpers import make_study

    study = make_study(status="approved")
    node = RemoteNode.objects.create(
        name="down", ae_title="TPS", host="127.0.0.1", port=1, can_store=True
    )
    send = services.dicom_send_create(study_id=study.pk, node=node, formats=["rtstruct"])[0]
    done = services.dicom_send_execute(send_id=send.pk)
    # make_study keeps no DICOM upload: the export refuses, a permanent failure
    assert done.status == "failed" and "upload_missing" in done.error
    assert AuditEvent.objects.filter(event_type="dicom_send_failed", study=study).exists()

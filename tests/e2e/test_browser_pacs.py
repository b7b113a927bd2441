"""The DICOM network in the browser, against a real Orthanc: a clinician fetches a study
from the PACS on the worklist, and sends an approved study's contours to a TPS from
the case page. No Dramatiq worker runs under live_server (StubBroker): the test runs
the queued retrieve / sends itself, as the worker would, and the pages poll."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser_helpers import shot
from tests.platform_tests.pacs.peers import case_files, orthanc, start_listener, store_files
from tests.platform_tests.studies.fixtures import _storage, synthetic_case

__all__ = ["_storage", "orthanc", "start_listener", "synthetic_case"]

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_fetch_from_pacs_on_the_worklist(
    cast: Any, browser_login: Any, start_listener: Any, orthanc: Any, synthetic_case: Path
) -> None:
    from lesionloop.pacs import services
    from lesionloop.pacs.models import ReceivedStudy, Retrieve

    listener = start_listener()
    server = orthanc(listener.port)
    server.upload(case_files(synthetic_case))
    services.remote_node_create(
        name="pacs", ae_title=server.aet, host="127.0.0.1", port=server.dicom_port, can_query=True
    )
    page = browser_login("cora", "cora-pass-1")
    page.click("#pacs-open")
    page.wait_for_selector("#pacs-node option[value]", state="attached")
    page.fill("#pacs-patient", "LLSYN000001")
    page.click("#pacs-search")
    page.wait_for_selector("#pacs-results tbody tr[data-uid]")
    assert page.locator("#pacs-results tbody tr[data-uid]").count() == 2
    assert "LLSYN000001" in page.locator("#pacs-results tbody").inner_text()
    shot(page, "pacs-fetch-results")
    page.click("#pacs-results tbody tr[data-uid] >> nth=0 >> .pacs-retrieve")
    page.wait_for_selector('#pacs-retrieves li[data-status="queued"]')
    retrieve = Retrieve.objects.get()
    assert retrieve.requested_by.username == "cora" and retrieve.study_instance_uid
    services.retrieve_execute(retrieve_id=retrieve.pk)  # the worker's part
    page.wait_for_selector('#pacs-retrieves li[data-status="done"]', timeout=15000)
    assert "received" in page.locator("#pacs-retrieves").inner_text()
    assert ReceivedStudy.objects.filter(
        study_instance_uid=retrieve.study_instance_uid, object_count__gt=0
    ).exists()
    shot(page, "pacs-fetch-done")
    assert not page.js_errors, page.js_errors


def test_send_an_approved_study_to_the_tps(
    cast: Any, browser_login: Any, start_listener: Any, orthanc: Any, synthetic_case: Path
) -> None:
    from lesionloop.loop import flows
    from lesionloop.pacs import services
    from lesionloop.pacs.models import DicomSend
    from lesionloop.studies import storage
    from lesionloop.studies.models import Job, Study

    listener = start_listener()
    assert set(store_files(listener.port, case_files(synthetic_case))) == {0}
    services.received_studies_complete(quiet_seconds=0)
    study = Study.objects.get()
    shutil.copy(
        synthetic_case / "ground_truth_ct.nii.gz",
        storage.upload_dir(study.pk) / "ground_truth.nii.gz",
    )
    flows.study_ingest(job_id=Job.objects.get(study=study, kind="ingest").pk)
    study.refresh_from_db()
    assert study.status == "approved", study.status_reason
    server = orthanc(listener.port)
    services.remote_node_create(
        name="tps", ae_title=server.aet, host="127.0.0.1", port=server.dicom_port, can_store=True
    )
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    page.wait_for_selector(
        "#send-controls:not([hidden]) #send-node option[value]", state="attached", timeout=20000
    )
    page.click("#send-go")
    page.wait_for_selector('#send-list li[data-status="queued"]')
    sends = list(DicomSend.objects.filter(study=study))
    assert sorted(s.format for s in sends) == ["rtstruct", "seg"]
    for send in sends:  # the worker's part
        assert services.dicom_send_execute(send_id=send.pk).status == "sent"
    page.wait_for_function(
        "document.querySelectorAll('#send-list li[data-status=\"sent\"]').length === 2",
        timeout=15000,
    )
    assert "0x0000" in page.locator("#send-list").inner_text()
    assert len(server.post("/tools/find", {"Level": "Instance", "Query": {"Modality": "SEG"}})) == 1
    page.locator("#send-box").scroll_into_view_if_needed()
    shot(page, "case-sent-to-tps")
    assert not page.js_errors, page.js_errors

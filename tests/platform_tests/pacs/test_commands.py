"""The pacs_fetch and pacs_send management commands (against Orthanc where they reach a
peer), and the automatic send after a clinician's approval (loop.flows)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from lesionloop.pacs.models import DicomSend, RemoteNode, Retrieve

pytestmark = pytest.mark.django_db(transaction=True)


def run(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out, stderr=out)
    return out.getvalue()


# (command, arguments, node flags, the refusal) - all refused before any network
REFUSALS = [
    ("pacs_fetch", ["--node", "nowhere", "--patient-id", "P1"], None, "no node named"),
    ("pacs_fetch", ["--node", "n", "--patient-id", "P1"], {"can_query": False}, "not enabled"),
    ("pacs_send", ["1", "--node", "nowhere"], None, "no node named"),
    ("pacs_send", ["999", "--node", "n"], {"can_store": True}, "No such study"),
    ("pacs_send", ["999", "--node", "n"], {"can_store": False}, "does not accept"),
]


@pytest.mark.parametrize(("command", "args", "flags", "message"), REFUSALS)
def test_commands_refuse_clearly(
    command: str, args: list[str], flags: dict | None, message: str
) -> None:
    if flags is not None:
        RemoteNode.objects.create(name="n", ae_title="X", host="127.0.0.1", port=1, **flags)
    with pytest.raises(CommandError, match=message):
        run(command, *args)


def test_pacs_fetch_now_moves_the_studies_from_orthanc(
    start_listener: Any, orthanc: Any, synthetic_case: Any
) -> None:
    from .peers import case_files

    listener = start_listener()
    server = orthanc(listener.port)
    server.upload(case_files(synthetic_case))
    RemoteNode.objects.create(
        name="pacs", ae_title=server.aet, host="127.0.0.1", port=server.dicom_port, can_query=True
    )
    queued = run("pacs_fetch", "--node", "pacs", "--patient-id", "LLSYN000001")
    assert ": queued" in queued
    output = run("pacs_fetch", "--node", "pacs", "--patient-id", "LLSYN000001", "--now")
    assert ": done" in output, output
    retrieve = Retrieve.objects.order_by("-pk").first()
    assert sum(s["completed"] for s in retrieve.studies) == len(case_files(synthetic_case))


def test_pacs_send_now_to_an_unreachable_node_reports_the_failure(cast: Any) -> None:
    from tests.platform_tests.studies.helpers import make_study

    study = make_study(status="approved")
    RemoteNode.objects.create(name="tps", ae_title="TPS", host="127.0.0.1", port=1, can_store=True)
    output = run("pacs_send", str(study.pk), "--node", "tps", "--formats", "rtstruct", "--now")
    assert "rtstruct: failed" in output  # make_study keeps no DICOM upload
    assert DicomSend.objects.get().status == "failed"


# (node flags, sends queued on approval)
ON_APPROVAL = [
    ({"can_store": True, "send_on_approval": True}, 2),
    ({"can_store": True, "send_on_approval": False}, 0),
    ({"can_store": True, "send_on_approval": True, "enabled": False}, 0),
]


@pytest.mark.parametrize(("flags", "queued"), ON_APPROVAL)
def test_approval_queues_the_sends_on_commit(
    cast: Any, flags: dict, queued: int, monkeypatch: Any
) -> None:
    from django.db import transaction

    from lesionloop.loop import flows
    from lesionloop.review import services as review
    from tests.platform_tests.studies.helpers import make_study

    study = make_study(status="approved")
    RemoteNode.objects.create(name="tps", ae_title="TPS", host="127.0.0.1", port=1, **flags)
    monkeypatch.setattr(review, "study_approve", lambda **kwargs: study)  # review approves
    enqueued: list[int] = []
    monkeypatch.setattr("lesionloop.pacs.services._send_enqueue", enqueued.append)
    with transaction.atomic():
        flows.study_approve(study_id=study.pk, user=cast.clinician)
        assert not DicomSend.objects.exists()  # nothing before the approval is committed
    sends = DicomSend.objects.filter(study=study)
    assert sends.count() == queued
    assert all(s.automatic and s.status == "queued" for s in sends)
    assert sorted(enqueued) == sorted(s.pk for s in sends)

"""The sweeper also rescues PACS retrieves, contour sends and gate-set scores.

Table-driven over the state a sweep finds each row in; and a broker that is down when
such a row is queued never turns into an error for the request that queued it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from lesionloop.core import queueing
from lesionloop.loop.sweeper import sweep
from lesionloop.pacs import services as pacs
from lesionloop.pacs.models import DicomSend, RemoteNode, Retrieve
from lesionloop.registry import services as registry
from lesionloop.registry.models import GateScore
from lesionloop.studies.models import Study
from lesionloop.training import gate

from ..studies.helpers import make_study, model_version

pytestmark = pytest.mark.django_db
MIN = 60


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    out: list[tuple[str, tuple[Any, ...]]] = []

    def fake_send(actor: Any, *args: Any, delay_ms: int | None = None) -> str:
        out.append((actor.actor_name, args))
        return f"msg-{len(out)}"

    monkeypatch.setattr(queueing, "send", fake_send)
    return out


def _node() -> RemoteNode:
    return RemoteNode.objects.create(name="tps", ae_title="TPS", host="127.0.0.1", port=11112)


def _ago(seconds: float) -> Any:
    return timezone.now() - timedelta(seconds=seconds)


# (case, status, age of the row in s (created / updated), claimed s ago or None, resent?)
PACS_CASES = [
    ("queued just now: its message is on its way", "queued", 10, None, False),
    ("queued 13 min ago: the message was lost", "queued", 13 * MIN, None, True),
    ("running, claimed 1 min ago", "running", 20 * MIN, 1 * MIN, False),
    ("running, claimed 16 min ago: the worker died", "running", 20 * MIN, 16 * MIN, True),
    ("done long ago", "done", 60 * MIN, 60 * MIN, False),
    ("failed long ago", "failed", 60 * MIN, 60 * MIN, False),
]


@pytest.mark.parametrize(("case", "status", "age", "claimed", "resent"), PACS_CASES)
def test_sweep_resends_lost_retrieves(
    sent: list[Any], case: str, status: str, age: float, claimed: float | None, resent: bool
) -> None:
    r = Retrieve.objects.create(node=_node(), patient_id="P1", status=status)
    Retrieve.objects.filter(pk=r.pk).update(
        created_at=_ago(age), claimed_at=None if claimed is None else _ago(claimed)
    )
    result = sweep()
    assert (("pacs_retrieve_task", (r.pk,)) in sent) is resent, case
    assert result.pacs_resent == int(resent)


SEND_STATUS = {"running": "sending", "done": "sent"}


@pytest.mark.parametrize(("case", "status", "age", "claimed", "resent"), PACS_CASES)
def test_sweep_resends_lost_contour_sends(
    sent: list[Any], case: str, status: str, age: float, claimed: float | None, resent: bool
) -> None:
    study = make_study(status="approved")
    s = DicomSend.objects.create(
        node=_node(),
        study=study,
        revision=1,
        format="rtstruct",
        status=SEND_STATUS.get(status, status),
    )
    DicomSend.objects.filter(pk=s.pk).update(
        updated_at=_ago(age), claimed_at=None if claimed is None else _ago(claimed)
    )
    sweep()
    assert (("dicom_send_task", (s.pk,)) in sent) is resent, case


# (case, status, created s ago, started s ago or None, resent?)
GATE_CASES = [
    ("queued just now", "queued", 10, None, False),
    ("queued 13 min ago: lost", "queued", 13 * MIN, None, True),
    ("running for 10 min: still working", "running", 20 * MIN, 10 * MIN, False),
    ("running for 2 h: past the time limit, its worker died", "running", 3 * 3600, 2 * 3600, True),
    ("done", "done", 3 * 3600, 2 * 3600, False),
]


@pytest.mark.parametrize(("case", "status", "created", "started", "resent"), GATE_CASES)
def test_sweep_rescues_gate_scores(
    sent: list[Any], case: str, status: str, created: float, started: float | None, resent: bool
) -> None:
    gate_set = registry.gate_set_version_grow(
        new_members=[{"study_id": 1, "snapshot_dir": "x", "stratum": "<100", "n_lesions": 1}]
    )
    score = GateScore.objects.create(
        model_version=model_version(), gate_set=gate_set, status=status
    )
    GateScore.objects.filter(pk=score.pk).update(
        created_at=_ago(created), started_at=None if started is None else _ago(started)
    )
    result = sweep()
    score.refresh_from_db()
    assert (("gate_score_execute_task", (score.pk,)) in sent) is resent, case
    assert result.gate_scores_resent == int(resent)
    if status == "running":
        assert score.status == ("queued" if resent else "running")


@pytest.mark.parametrize(
    "enqueue",
    [
        lambda: pacs._retrieve_enqueue(1),
        lambda: pacs._send_enqueue(1),
        lambda: gate.gate_score_enqueue(1),
    ],
    ids=["retrieve", "send", "gate score"],
)
def test_a_dead_broker_never_raises_from_an_enqueue(
    monkeypatch: pytest.MonkeyPatch, enqueue: Any
) -> None:
    import dramatiq

    def broker_down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("broker down")

    monkeypatch.setattr(dramatiq.Actor, "send", broker_down)
    monkeypatch.setattr(dramatiq.Actor, "send_with_options", broker_down)
    enqueue()  # logged; the row stays queued for the sweeper


@pytest.mark.parametrize(("active", "released"), [(True, 1), (False, 0)])
def test_sweep_releases_studies_awaiting_an_active_model(
    sent: list[Any], active: bool, released: int
) -> None:
    """The activation's message was lost: studies would await a model that is there."""
    study = make_study(status="awaiting_model")
    Study.objects.filter(pk=study.pk).update(revision_number=0)  # never pre-segmented
    model_version(status="active" if active else "candidate")
    result = sweep()
    study.refresh_from_db()
    assert result.studies_released == released
    assert (study.status == "awaiting_model") is (not active)
    assert sweep().studies_released == 0  # its job is open now (or there is no model)

"""Scoring a version on the gate set: a real (tiny, untrained) ensemble, an idempotent
job, and the promotion rule and API reading only comparable numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lesionloop.registry import services as registry
from lesionloop.registry.models import GateScore, GateSetVersion, ModelVersion
from lesionloop.training import gate, tasks

SHAPE = (8, 32, 32)
SPACING = [4.0, 3.0, 3.0]  # 36 mm3 per voxel


def gate_case(root: Path, study_id: int, boxes: list[tuple[slice, ...]]) -> dict[str, Any]:
    d = root / f"gate-{study_id}"
    d.mkdir(parents=True)
    rng = np.random.default_rng(study_id)
    np.save(d / "model_input.npy", rng.standard_normal((2, *SHAPE)).astype(np.float32))
    gt = np.zeros(SHAPE, np.uint8)
    for b in boxes:
        gt[b] = 1
    np.save(d / "ground_truth.npy", gt)
    (d / "study.json").write_text(json.dumps({"grid": {"spacing_mm": SPACING}}))
    return {"study_id": study_id, "snapshot_dir": str(d), "stratum": "x", "n_lesions": len(boxes)}


@pytest.fixture
def scored_setup(cast: Any, tmp_path: Path, settings: Any) -> Any:
    from tests.platform_tests.studies.helpers import tiny_model_dir

    settings.STORAGE_ROOT = tmp_path / "storage"
    settings.LESIONLOOP_DEVICE = "cpu"
    model_dir = Path(settings.STORAGE_ROOT) / "models" / "v1"
    model_dir.mkdir(parents=True)
    tiny_model_dir(model_dir)
    version = ModelVersion.objects.create(
        name="v1", status="active", preset="lite", weights_dir="models/v1"
    )
    members = [
        gate_case(tmp_path, 1, [np.s_[1:3, 2:4, 2:4]]),  # 8 vox = 288 mm3: 100-500
        gate_case(tmp_path, 2, [np.s_[1:5, 10:14, 10:14], np.s_[6:7, 20:21, 20:22]]),  # 2304, 72
    ]
    gate_set = registry.gate_set_version_grow(new_members=members)
    score, created = registry.gate_score_request(version_id=version.pk, gate_set_id=gate_set.pk)
    assert created
    return score


def test_scoring_is_idempotent_and_records_the_set(scored_setup: GateScore) -> None:
    gate.gate_score_execute(score_id=scored_setup.pk)
    score = GateScore.objects.get(pk=scored_setup.pk)
    assert score.status == "done", score.message
    m = score.metrics
    assert m["n_studies"] == 2 and m["n_lesions"] == 3
    assert {k: v["n_lesions"] for k, v in m["size_groups"].items()} == {
        "<100": 1,
        "100-500": 1,
        "500-1500": 0,
        ">1500": 1,
    }
    assert set(m["brats"]) >= {"tp", "fn", "fp", "lesionwise_dice", "sq_dsc"}
    assert set(m["per_study"]) == {"1", "2"}
    finished = score.finished_at
    # A redelivered message, or asking again, never scores twice.
    gate.gate_score_execute(score_id=score.pk)
    again, created = registry.gate_score_request(
        version_id=score.model_version_id, gate_set_id=score.gate_set_id
    )
    assert not created and again.pk == score.pk
    assert GateScore.objects.get(pk=score.pk).finished_at == finished


def test_a_claimed_score_is_not_run_twice(scored_setup: GateScore, monkeypatch: Any) -> None:
    GateScore.objects.filter(pk=scored_setup.pk).update(status="running")
    monkeypatch.setattr("ml.evaluation.gate.score_model", lambda *a, **k: pytest.fail("scored"))
    gate.gate_score_execute(score_id=scored_setup.pk)
    assert GateScore.objects.get(pk=scored_setup.pk).status == "running"


def test_a_missing_member_fails_the_score_loudly(scored_setup: GateScore) -> None:
    member = scored_setup.gate_set.members[0]
    (Path(member["snapshot_dir"]) / "ground_truth.npy").unlink()
    gate.gate_score_execute(score_id=scored_setup.pk)
    score = GateScore.objects.get(pk=scored_setup.pk)
    assert score.status == "failed" and "ground_truth.npy" in score.message
    # Asked again (e.g. by the next promotion), a failed score is queued again, once.
    again, enqueue = registry.gate_score_request(
        version_id=score.model_version_id, gate_set_id=score.gate_set_id
    )
    assert enqueue and again.pk == score.pk and again.status == "queued"
    assert registry.gate_score_request(
        version_id=score.model_version_id, gate_set_id=score.gate_set_id
    ) == (again, False)


def test_actor_is_declared_for_inference() -> None:
    actor = tasks.gate_score_execute_task
    assert actor.queue_name == "gpu-infer"
    assert actor.options["max_retries"] == 0 and actor.options["time_limit"] >= 600_000


def _versions_scored(cast: Any, scores: dict[str, dict | None], gate_numbers: int = 1) -> Any:
    from django.utils import timezone

    v1 = ModelVersion.objects.create(
        name="v1",
        status="active",
        preset="lite",
        weights_dir="models/v1",
        promoted_at=timezone.now(),
        metrics={"dsc": 0.9, "small_sensitivity": 0.9},
    )
    v2 = ModelVersion.objects.create(
        name="v2",
        status="candidate",
        preset="lite",
        weights_dir="models/v2",
        parent=v1,
        metrics={"dsc": 0.1, "small_sensitivity": 0.1},  # validation numbers: never compared
    )
    gate_set = None
    for n in range(gate_numbers):
        gate_set = registry.gate_set_version_grow(
            new_members=[
                {"study_id": 10 + n, "snapshot_dir": "x", "stratum": "<100", "n_lesions": 2}
            ]
        )
    for version in (v1, v2):
        metrics = scores.get(version.name)
        if metrics is not None:
            GateScore.objects.create(
                model_version=version,
                gate_set=gate_set,
                status="done",
                metrics=metrics,
                finished_at=timezone.now(),
            )
    return v1, v2, gate_set


PROMOTIONS = [
    # name, scores on the current gate set, expected status, expected code
    (
        "both scored, not worse",
        {
            "v1": {"dsc": 0.7, "small_sensitivity": 0.5},
            "v2": {"dsc": 0.71, "small_sensitivity": 0.5},
        },
        200,
        None,
    ),
    (
        "both scored, worse on small lesions",
        {
            "v1": {"dsc": 0.7, "small_sensitivity": 0.5},
            "v2": {"dsc": 0.8, "small_sensitivity": 0.4},
        },
        409,
        "worse_than_active",
    ),
    (
        "active not yet re-scored",
        {"v2": {"dsc": 0.9, "small_sensitivity": 0.9}},
        409,
        "not_comparable",
    ),
]


@pytest.mark.parametrize(
    ("name", "scores", "status", "code"), PROMOTIONS, ids=[p[0] for p in PROMOTIONS]
)
def test_promotion_uses_only_gate_scores(
    cast: Any, api: Any, monkeypatch: Any, name: str, scores: dict, status: int, code: str | None
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(gate, "gate_score_enqueue", sent.append)
    monkeypatch.setattr("lesionloop.loop.tasks.model_version_activated_task.send", lambda *a: None)
    v1, v2, gate_set = _versions_scored(cast, scores)
    resp = api(cast.admin).post(f"/api/models/{v2.pk}/promote/", {}, format="json")
    assert resp.status_code == status, resp.json()
    if code:
        body = resp.json()
        assert body["code"] == code
        assert body["comparison"]["reference"] == "gate set v1 (1 studies, 2 lesions)"
    if code == "not_comparable":
        # the missing score was asked for (a job row that stays after the 409)
        assert GateScore.objects.filter(
            model_version=v1, gate_set=gate_set, status="queued"
        ).exists()


def test_models_api_says_which_set_and_what_is_not_comparable(cast: Any, api: Any) -> None:
    v1, v2, gate_set = _versions_scored(
        cast, {"v1": {"dsc": 0.7}, "v2": {"dsc": 0.8}}, gate_numbers=1
    )
    # The set grows: v1 is re-scored on v2 of the set, v2 not yet.
    gate_set2 = registry.gate_set_version_grow(
        new_members=[{"study_id": 99, "snapshot_dir": "y", "stratum": ">1500", "n_lesions": 1}]
    )
    GateScore.objects.create(
        model_version=v1, gate_set=gate_set2, status="done", metrics={"dsc": 0.6}
    )
    rows = {r["name"]: r["gate"] for r in api(cast.clinician).get("/api/models/").json()["results"]}
    assert rows["v1"]["comparable"] is True and rows["v1"]["gate_set"] == 2
    assert (rows["v1"]["n_studies"], rows["v1"]["n_lesions"]) == (2, 3)
    assert rows["v1"]["metrics"]["dsc"] == 0.6
    assert rows["v2"]["comparable"] is False and rows["v2"]["gate_set"] == 1
    assert rows["v2"]["pending"] == "not requested"
    current = api(cast.auditor).get("/api/gate-set/").json()["current"]
    assert current["label"] == "gate set v2 (2 studies, 3 lesions)"
    assert current["study_ids"] == [10, 99]


def test_no_gate_set_yet(cast: Any, api: Any) -> None:
    resp = api(cast.clinician).get("/api/gate-set/")
    assert resp.status_code == 200 and resp.json() == {"current": None}
    assert GateSetVersion.objects.count() == 0
    assert api(None).get("/api/gate-set/").status_code == 403

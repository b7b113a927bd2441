"""The split and the gate set: stratified, deterministic, sticky, grows, never shrinks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lesionloop.registry.models import GateScore, GateSetVersion, ModelVersion
from lesionloop.training import gate, selectors, services
from lesionloop.training.models import SplitAssignment

# Spacing 4 x 3 x 3 mm: 36 mm3 per voxel.
VOXELS_FOR = {"<100": 2, "100-500": 8, "500-1500": 27, ">1500": 64, "none": 0}


def record(root: Path, study_id: int, stratum: str) -> selectors.CaseRecord:
    """A prepared case whose only lesion puts it in ``stratum``."""
    d = root / f"case-{study_id}"
    d.mkdir(parents=True)
    np.save(d / "model_input.npy", np.zeros((2, 6, 8, 8), np.float32))
    gt = np.zeros((6, 8, 8), np.uint8)
    gt.reshape(-1)[: VOXELS_FOR[stratum]] = 1  # contiguous run: one lesion
    np.save(d / "ground_truth.npy", gt)
    (d / "study.json").write_text(json.dumps({"grid": {"spacing_mm": [4.0, 3.0, 3.0]}}))
    return selectors.CaseRecord(
        study_id, f"uid-{study_id}", d, d / "ground_truth.npy", datetime.now(UTC)
    )


def splits() -> dict[int, str]:
    return dict(SplitAssignment.objects.values_list("study_id", "split"))


@pytest.mark.parametrize(
    ("strata", "expected"),
    [
        # first train, first validation, then per stratum: train, val, gate, train, train
        (["<100"] * 2, ["train", "validation"]),
        (["<100"] * 6, ["train", "validation", "gate", "train", "train", "train"]),
        # Two strata interleaved: each stratum cycles on its own, so each reaches the gate.
        (
            ["<100", ">1500"] * 4,
            ["train", "validation", "validation", "validation", "gate", "gate", "train", "train"],
        ),
        (["none", "100-500", "500-1500"], ["train", "validation", "train"]),
    ],
)
def test_rule_by_stratum(cast: Any, tmp_path: Path, strata: list[str], expected: list[str]) -> None:
    records = [record(tmp_path, i + 1, s) for i, s in enumerate(strata)]
    result = services.split_ensure(records)
    assert [splits()[r.study_id] for r in records] == expected
    assert [r.study_id for r in result.gate] == [
        r.study_id for r, e in zip(records, expected, strict=True) if e == "gate"
    ]
    assert dict(SplitAssignment.objects.values_list("study_id", "stratum")) == {
        r.study_id: s for r, s in zip(records, strata, strict=True)
    }


def test_gate_set_is_stratified_when_first_made(cast: Any, tmp_path: Path) -> None:
    """A new site's first batch: every stratum with >= 3 studies gives one to the gate."""
    strata = ["<100"] * 5 + ["100-500"] * 5 + [">1500"] * 5
    records = [record(tmp_path, i + 1, s) for i, s in enumerate(strata)]
    result = services.split_ensure(records)
    g = GateSetVersion.objects.get()
    assert g.number == 1 and g.strata == {"<100": 1, "100-500": 1, ">1500": 1}
    assert g.n_studies == 3 and g.n_lesions == 3
    assert {m["stratum"] for m in g.members} == {"<100", "100-500", ">1500"}
    assert len(result.val) >= 3 and len(result.train) >= 6  # every stratum reaches validation


def test_grows_by_rule_never_shrinks_and_is_sticky(cast: Any, tmp_path: Path) -> None:
    first = [record(tmp_path, i, "<100") for i in range(1, 6)]
    services.split_ensure(first)
    before = splits()
    v1 = GateSetVersion.objects.get()
    # Studies come back (a reopened, re-approved one with a new snapshot) and new ones arrive.
    more = [record(tmp_path, i, "<100") for i in range(100, 111)]
    services.split_ensure(first + more)
    later = [record(tmp_path, i, "<100") for i in range(200, 205)]
    services.split_ensure(first + more + later)
    assert {k: v for k, v in splits().items() if k in before} == before  # sticky
    versions = list(GateSetVersion.objects.order_by("number"))
    # Positions 5..15 of the stratum hold two gate slots (7 and 12), 16..20 one (17: study 201).
    assert [v.study_ids for v in versions] == [[3], [3, 102, 107], [3, 102, 107, 201]]
    for older, newer in zip(versions, versions[1:], strict=False):
        assert set(older.study_ids) < set(newer.study_ids)  # grows, never shrinks
    assert versions[0].study_ids == v1.study_ids
    # Nothing new: no new version; calling again changes nothing.
    services.split_ensure(first + more + later)
    assert GateSetVersion.objects.count() == 3


def test_calibration_and_training_never_see_the_gate(
    cast: Any, tmp_path: Path, monkeypatch: Any, fake_runner: Any
) -> None:
    records = [record(tmp_path, i + 1, s) for i, s in enumerate(["<100"] * 3 + [">1500"] * 3)]
    monkeypatch.setattr(selectors, "training_case_records", lambda: list(records))
    spec_copy = fake_runner("ok")
    run = services.training_run_start(started_by=cast.admin)
    services.training_run_execute(run_id=run.pk)
    spec = json.loads(spec_copy.read_text())
    gate_ids = set(GateSetVersion.objects.get().study_ids)
    assert gate_ids
    assert gate_ids.isdisjoint(c["study_id"] for c in spec["train_cases"])
    assert gate_ids.isdisjoint(c["study_id"] for c in spec["val_cases"])  # calibration


def test_growth_requests_scores_for_active_and_candidates(
    cast: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(gate, "gate_score_enqueue", sent.append)
    for name, status in (("v1", "active"), ("v2", "candidate"), ("v3", "failed")):
        ModelVersion.objects.create(
            name=name,
            status=status,
            preset="tiny",
            weights_dir="" if status == "failed" else f"models/{name}",
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.split_ensure([record(tmp_path, i, "<100") for i in range(1, 4)])
    scores = GateScore.objects.order_by("model_version__name")
    assert [s.model_version.name for s in scores] == ["v1", "v2"]
    assert sorted(sent) == sorted(s.pk for s in scores)
    # Asking again (another approval, a redelivered message) makes no second score.
    with django_capture_on_commit_callbacks(execute=True):
        gate.gate_scores_request()
    assert GateScore.objects.count() == 2 and len(sent) == 2

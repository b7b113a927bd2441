"""Fixtures for training tests: fake training cases and a fake runner (no torch)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FAKE_RUNNER = Path(__file__).with_name("fake_runner.py")


def make_case_dir(root: Path, study_id: int) -> Path:
    d = root / f"case-{study_id}"
    d.mkdir(parents=True)
    np.save(d / "model_input.npy", np.zeros((2, 4, 8, 8), np.float32))
    gt = np.zeros((4, 8, 8), np.uint8)
    gt[1:3, 2:4, 2:4] = 1
    np.save(d / "ground_truth.npy", gt)
    (d / "study.json").write_text(json.dumps({"grid": {"spacing_mm": [4.0, 3.0, 3.0]}}))
    return d


@pytest.fixture
def cases(tmp_path: Path, monkeypatch: Any) -> Any:
    """``cases(n)`` makes n training cases that ``training_case_records`` returns."""
    from lesionloop.training import selectors

    records: list[selectors.CaseRecord] = []

    def make(n: int, *, start: int = 1) -> list[selectors.CaseRecord]:
        for sid in range(start, start + n):
            d = make_case_dir(tmp_path / "cases", sid)
            records.append(
                selectors.CaseRecord(
                    sid, f"uid-{sid}", d, d / "ground_truth.npy", datetime.now(UTC)
                )
            )
        return list(records)

    monkeypatch.setattr(selectors, "training_case_records", lambda: list(records))
    return make


@pytest.fixture
def fake_runner(settings: Any, monkeypatch: Any, tmp_path: Path) -> Any:
    """Use the fake runner; ``fake_runner("crash")`` picks its behaviour."""
    settings.LESIONLOOP_TRAINING_RUNNER = [sys.executable, str(FAKE_RUNNER)]
    settings.STORAGE_ROOT = tmp_path / "storage"
    monkeypatch.setenv("FAKE_RUNNER_SPEC_COPY", str(tmp_path / "spec-copy.json"))

    def use(mode: str = "ok", *, metrics: dict | None = None, baseline: dict | None = None) -> Path:
        monkeypatch.setenv("FAKE_RUNNER_MODE", mode)
        if metrics is not None:
            monkeypatch.setenv("FAKE_RUNNER_METRICS", json.dumps(metrics))
        if baseline is not None:
            monkeypatch.setenv("FAKE_RUNNER_BASELINE", json.dumps(baseline))
        return tmp_path / "spec-copy.json"

    return use


@pytest.fixture(autouse=True)
def studies_calls(monkeypatch: Any) -> list[tuple[str, Any]]:
    """Record the calls into the studies app after an activation (platform A's code,
    tested there) instead of queueing real pre-segmentation jobs."""
    from lesionloop.studies import services as studies

    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        studies,
        "studies_presegment_unreviewed",
        lambda *, model_version_id: calls.append(("presegment_unreviewed", model_version_id)) or 0,
    )
    monkeypatch.setattr(
        studies,
        "studies_awaiting_model_enqueue",
        lambda: calls.append(("awaiting_model_enqueue", None)) or 0,
    )
    return calls

"""Workers come back after a crash: dramatiq's main process exits when a worker child
dies (SIGKILL, OOM), so each worker service needs its supervisor's restart policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())
RESTARTS = {"always", "unless-stopped", "on-failure"}


def _runs_a_worker(name: str, service: dict) -> bool:
    command = service.get("command") or []
    return name.startswith("worker") or "rundramatiq" in command


WORKERS = sorted(n for n, s in COMPOSE["services"].items() if _runs_a_worker(n, s))


def test_the_compose_file_has_the_three_worker_kinds() -> None:
    assert {"worker-default", "worker-infer", "worker-train"} <= set(WORKERS)


@pytest.mark.parametrize("name", WORKERS)
def test_every_worker_is_restarted_by_compose(name: str) -> None:
    assert COMPOSE["services"][name].get("restart") in RESTARTS


def test_the_systemd_example_restarts_the_workers() -> None:
    text = (ROOT / "docs" / "PLATFORM.md").read_text()
    assert "Restart=always" in text and "rundramatiq" in text

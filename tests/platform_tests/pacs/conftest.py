"""Fixtures of the DICOM network tests (defined in peers.py, shared with tests/e2e),
and ``fsyncs``: the fsync calls made from now on."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.platform_tests.pacs.peers import orthanc, start_listener
from tests.platform_tests.studies.fixtures import _storage, synthetic_case

__all__ = ["_storage", "fsyncs", "orthanc", "start_listener", "synthetic_case"]


@dataclass(frozen=True)
class Fsync:
    path: Path  # what the descriptor named when it was fsynced
    thread: str


class Fsyncs(list[Fsync]):
    @property
    def paths(self) -> list[Path]:
        return [call.path for call in self]


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> Fsyncs:
    """Every ``os.fsync`` of ``lesionloop.pacs.staging`` from now on, in order, with the
    path its descriptor names (``/proc/self/fd``) and the calling thread; the real
    fsync still runs."""
    from lesionloop.pacs import staging

    calls = Fsyncs()
    real = os.fsync

    def recording(fd: int) -> None:
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        calls.append(Fsync(path, threading.current_thread().name))
        real(fd)

    monkeypatch.setattr(staging.os, "fsync", recording)
    return calls

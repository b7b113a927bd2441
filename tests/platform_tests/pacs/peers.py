"""Peers of the DICOM network for tests: free loopback ports, a listener, a real Orthanc.

Imported by tests/platform_tests/pacs/conftest.py and the browser tests
(tests/e2e/test_browser_pacs.py): fixtures and helpers in one importable module."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ORTHANC = Path("/usr/sbin/Orthanc")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def start_listener() -> Iterator[Any]:
    """``start_listener(port=..., allowed_aets=[...], fsync="object", ...)`` -> a started
    ``Listener``; every listener started is stopped at the end. No completion loop
    unless asked: tests call ``received_studies_complete`` themselves. ``fsync``
    defaults to ``LESIONLOOP_DICOM_FSYNC``."""
    from lesionloop.pacs.listener import Listener, listener_config

    started: list[Any] = []

    def start(
        *,
        complete: bool = False,
        quiet_seconds: float = 0.0,
        fsync: str | None = None,
        **config: Any,
    ) -> Any:
        config.setdefault("port", free_port())
        config.setdefault("host", "127.0.0.1")
        config.setdefault("ae_title", "LESIONLOOP")
        listener = Listener(
            listener_config(**config),
            quiet_seconds=quiet_seconds,
            poll_seconds=0.2,
            complete=complete,
            fsync=fsync,
        ).start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.stop()


def store_files(
    port: int, files: list[Path], *, calling_ae: str = "MODALITY", called_ae: str = "LESIONLOOP"
) -> list[int]:
    """C-STORE ``files`` on one association; the status of each (-1: not sent).

    pynetdicom's requestor can lose a response it was waiting for (its reactor takes
    it off the queue first: "Received unexpected C-STORE service message", then a
    DIMSE timeout and an abort; pydicom/pynetdicom#435), more often the faster the
    SCP answers. Like a modality, this sender then sends the objects without a status
    again on a new association, at most twice; the listener stores each once."""
    statuses: list[int] = []
    for _attempt in range(3):
        statuses += _store_once(port, files[len(statuses) :], calling_ae, called_ae)
        if len(statuses) == len(files):
            break
    return statuses + [-1] * (len(files) - len(statuses))


def _store_once(port: int, files: list[Path], calling_ae: str, called_ae: str) -> list[int]:
    """The statuses of ``files`` sent in order, up to the first without one."""
    from pydicom import dcmread
    from pynetdicom import AE, StoragePresentationContexts

    ae = AE(ae_title=calling_ae)
    ae.requested_contexts = StoragePresentationContexts
    ae.dimse_timeout = 10  # a lost response costs this long
    assoc = ae.associate("127.0.0.1", port, ae_title=called_ae)
    assert assoc.is_established, "association refused"
    statuses = []
    try:
        for path in files:
            status = assoc.send_c_store(dcmread(path)) if assoc.is_established else None
            if not status or "Status" not in status:
                break
            statuses.append(int(status.Status))
    finally:
        if assoc.is_established:
            assoc.release()
    return statuses


def case_files(case: Path) -> list[Path]:
    return sorted((case / "dicom").rglob("*.dcm"))


@dataclass
class Orthanc:
    url: str
    dicom_port: int
    aet: str = "ORTHANC"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path: str, data: bytes | dict | str, raw: bool = False) -> Any:
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        req = urllib.request.Request(self.url + path, data=body, method="POST")
        with urllib.request.urlopen(req, timeout=120) as r:
            out = r.read()
        return out if raw else json.loads(out or b"null")

    def upload(self, files: list[Path]) -> None:
        for path in files:
            self.post("/instances", path.read_bytes())


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Any]:
    """``orthanc(listener_port)``: a real Orthanc on loopback that knows our listener as
    the modality ``lesionloop``; stopped at the end of the test."""
    if not ORTHANC.exists():
        pytest.skip(f"Orthanc is not installed ({ORTHANC} missing; apt-get install orthanc)")
    procs: list[subprocess.Popen] = []

    def start(listener_port: int) -> Orthanc:
        http_port, dicom_port = free_port(), free_port()
        root = tmp_path / f"orthanc-{len(procs)}"
        root.mkdir()
        config = {
            "Name": "lesionloop-test",
            "StorageDirectory": str(root / "storage"),
            "IndexDirectory": str(root / "index"),
            "DicomAet": "ORTHANC",
            "DicomPort": dicom_port,
            "HttpPort": http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomModalities": {"lesionloop": ["LESIONLOOP", "127.0.0.1", listener_port]},
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "Plugins": [],
        }
        (root / "orthanc.json").write_text(json.dumps(config))
        log = (root / "orthanc.log").open("w")
        proc = subprocess.Popen(
            [str(ORTHANC), str(root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT
        )
        procs.append(proc)
        server = Orthanc(url=f"http://127.0.0.1:{http_port}", dicom_port=dicom_port)
        deadline = time.monotonic() + 30
        while True:
            try:
                server.get("/system")
                return server
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "Orthanc did not start: " + (root / "orthanc.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.1)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()

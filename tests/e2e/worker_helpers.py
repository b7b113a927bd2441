"""Helpers for the worker-loop end-to-end test: processes, a small HTTP client."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@dataclass
class Processes:
    """Subprocesses started by the test, each in its own process group; all stopped at the end."""

    env: dict[str, str]
    logs: Path
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, args: list[str]) -> Proc:
        log = self.logs / f"{name}.log"
        with open(log, "wb") as fh:
            popen = subprocess.Popen(
                [sys.executable, *args],
                cwd=ROOT,
                env=self.env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is not None:
                raise AssertionError(
                    f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}"
                )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _stop_group(proc.popen)

    def logs_text(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.procs)


def _stop_group(popen: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(popen.pid, sig)
        except ProcessLookupError:
            return
        try:
            popen.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class Api:
    """JSON over HTTP with a token; raises with the body on unexpected statuses."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base.rstrip("/")
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        expect: int | tuple[int, ...] = (200, 201, 202),
    ) -> tuple[int, Any, dict[str, str]]:
        hdrs = {"Authorization": f"Token {self.token}", **(headers or {})}
        if json_body is not None:
            data = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, raw, rh = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            status, raw, rh = err.code, err.read(), dict(err.headers)
        expected = (expect,) if isinstance(expect, int) else expect
        body: Any = raw
        if rh.get("Content-Type", "").startswith("application/json"):
            body = json.loads(raw or b"null")
        if status not in expected:
            raise AssertionError(f"{method} {path} -> {status}: {raw[:2000]!r}")
        return status, body, rh

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)[1]

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json_body=body if body is not None else {}, **kw)[1]

    def upload(self, path: str, files: list[tuple[str, str, bytes]]) -> Any:
        boundary = uuid.uuid4().hex
        parts = []
        for fieldname, filename, content in files:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{fieldname}"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                + content
                + b"\r\n"
            )
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request(
            "POST",
            path,
            data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )[1]


def zip_folder(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1)


def wait_for(
    what: str,
    probe: Callable[[], Any],
    *,
    timeout_s: float,
    processes: Processes,
    interval_s: float = 1.0,
) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with the process logs."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        processes.check_alive()
        last = probe()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}\n{processes.logs_text()}")

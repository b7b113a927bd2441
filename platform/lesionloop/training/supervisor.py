"""Run the training subprocess under supervision: live events, timeout, cancel.

No Django here either: the caller passes callbacks, which keeps this testable
with a fake runner.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Outcome:
    status: str  # "succeeded" | "failed" | "cancelled" | "timeout"
    returncode: int | None
    done: dict[str, Any] | None  # the runner's final "done" event
    log_tail: str


def runner_command(spec_path: Path) -> list[str]:
    return [sys.executable, "-m", "lesionloop.training.runner", str(spec_path)]


def _reader(stream: Any, sink: queue.Queue[str | None]) -> None:
    for line in iter(stream.readline, ""):
        sink.put(line)
    sink.put(None)


def _kill(proc: subprocess.Popen[str], grace_s: float) -> None:
    """TERM the whole process group, then KILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def supervise(
    command: list[str],
    *,
    log_path: Path,
    timeout_s: float,
    on_start: Callable[[int], None],
    on_event: Callable[[dict[str, Any]], None],
    should_cancel: Callable[[], bool],
    cancel_file: Path | None = None,
    poll_s: float = 1.0,
    grace_s: float = 5.0,
    env: dict[str, str] | None = None,
) -> Outcome:
    """Start ``command``, forward its JSON stdout lines to ``on_event`` and stop it on
    cancel (``should_cancel`` polled every ``poll_s``) or after ``timeout_s``."""
    base_env = {**os.environ, **(env or {})}
    paths = [str(PROJECT_ROOT / "platform"), str(PROJECT_ROOT)]
    if base_env.get("PYTHONPATH"):
        paths.append(base_env["PYTHONPATH"])
    base_env["PYTHONPATH"] = os.pathsep.join(paths)
    base_env.pop("DJANGO_SETTINGS_MODULE", None)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=base_env,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: one kill reaches its children
        )
    on_start(proc.pid)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    deadline = time.monotonic() + timeout_s
    next_poll = 0.0
    done: dict[str, Any] | None = None
    status: str | None = None
    eof = False
    try:
        while True:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                line = ""
            if line is None:
                eof = True
            elif line.strip():
                try:
                    event = json.loads(line)
                except ValueError:
                    log.info("runner: %s", line.rstrip())
                else:
                    if event.get("type") == "done":
                        done = event
                    on_event(event)
            now = time.monotonic()
            if eof and proc.poll() is not None:
                break
            if now >= deadline:
                status = "timeout"
                break
            if now >= next_poll:
                next_poll = now + poll_s
                if should_cancel():
                    status = "cancelled"
                    if cancel_file is not None:
                        cancel_file.touch()  # ask politely first; the kill follows
                    break
    finally:
        if proc.poll() is None:
            _kill(proc, grace_s if status == "cancelled" else 1.0)
    if status is None:
        code = proc.returncode
        status = (
            "succeeded"
            if code == 0 and done is not None
            else ("cancelled" if code == 3 else "failed")
        )
    return Outcome(status, proc.returncode, done, _tail(log_path))


def _tail(path: Path, n: int = 2000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-n:]

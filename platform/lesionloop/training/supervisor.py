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
    proc = _start(command, log_path=log_path, env=_runner_env(env))
    on_start(proc.pid)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    watch = _Watch(deadline=time.monotonic() + timeout_s)
    try:
        _follow(
            proc,
            lines,
            watch,
            on_event=on_event,
            should_cancel=should_cancel,
            cancel_file=cancel_file,
            poll_s=poll_s,
        )
    finally:
        if proc.poll() is None:
            _kill(proc, grace_s if watch.status == "cancelled" else 1.0)
    return Outcome(
        _final_status(watch, proc.returncode), proc.returncode, watch.done, _tail(log_path)
    )


def _runner_env(env: dict[str, str] | None) -> dict[str, str]:
    """The environment of the runner: ours plus ``env``, the project on ``PYTHONPATH``
    (first) and no Django settings."""
    base_env = {**os.environ, **(env or {})}
    paths = [str(PROJECT_ROOT / "platform"), str(PROJECT_ROOT)]
    if base_env.get("PYTHONPATH"):
        paths.append(base_env["PYTHONPATH"])
    base_env["PYTHONPATH"] = os.pathsep.join(paths)
    base_env.pop("DJANGO_SETTINGS_MODULE", None)
    return base_env


def _start(command: list[str], *, log_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start the runner in its own process group: stdout piped (the events), stderr
    to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log_file:
        return subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: one kill reaches its children
        )


@dataclass
class _Watch:
    """What following the runner found so far: its "done" event and why we stopped."""

    deadline: float  # time.monotonic() past which the run times out
    done: dict[str, Any] | None = None
    status: str | None = None  # "timeout" or "cancelled" when we stopped it


def _follow(
    proc: subprocess.Popen[str],
    lines: queue.Queue[str | None],
    watch: _Watch,
    *,
    on_event: Callable[[dict[str, Any]], None],
    should_cancel: Callable[[], bool],
    cancel_file: Path | None,
    poll_s: float,
) -> None:
    """Forward events until the runner exits, the deadline passes or a cancel is asked
    for (``watch.status`` says which of the last two)."""
    next_poll = 0.0
    eof = False
    while True:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            line = ""
        if line is None:
            eof = True
        elif line.strip():
            _forward(line, watch, on_event)
        now = time.monotonic()
        if eof and proc.poll() is not None:
            return
        if now >= watch.deadline:
            watch.status = "timeout"
            return
        if now >= next_poll:
            next_poll = now + poll_s
            if should_cancel():
                watch.status = "cancelled"
                if cancel_file is not None:
                    cancel_file.touch()  # ask politely first; the kill follows
                return


def _forward(line: str, watch: _Watch, on_event: Callable[[dict[str, Any]], None]) -> None:
    """One stdout line: a JSON event goes to ``on_event`` (the "done" one is kept);
    anything else is logged."""
    try:
        event = json.loads(line)
    except ValueError:
        log.info("runner: %s", line.rstrip())
    else:
        if event.get("type") == "done":
            watch.done = event
        on_event(event)


def _final_status(watch: _Watch, code: int | None) -> str:
    """Ours when we stopped the runner; else from its exit code and "done" event."""
    if watch.status is not None:
        return watch.status
    return (
        "succeeded"
        if code == 0 and watch.done is not None
        else ("cancelled" if code == 3 else "failed")
    )


def _tail(path: Path, n: int = 2000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-n:]

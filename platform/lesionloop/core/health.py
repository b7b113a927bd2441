"""Health checks of the plumbing every process needs: database, broker, storage.

A check is a function of no arguments that returns a short detail on success and raises
on failure. ``health_run`` runs a table of them and never raises itself; it is what
``GET /healthz`` (``lesionloop.viewer.health``) and ``manage.py health`` call. Checks are
cheap: one ``SELECT 1``, one broker round trip with a 3 s timeout, one small file
written and removed. Nothing here imports torch.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

Check = Callable[[], str]
BROKER_TIMEOUT_S = 3.0
# Below this much free space on STORAGE_ROOT an upload or a prediction would fail.
MIN_FREE_BYTES = 256 * 1024**2
_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]*@")


class HealthError(Exception):
    """A check's failure in words an operator can act on."""


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    ms: float


def database_check() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return f"{connection.vendor} reachable"


def _broker_url() -> tuple[str, str]:
    """(broker class path, url) of the configured Dramatiq broker."""
    broker = settings.DRAMATIQ_BROKER
    return str(broker["BROKER"]), str((broker.get("OPTIONS") or {}).get("url") or "")


def broker_check() -> str:
    broker, url = _broker_url()
    if broker.endswith("StubBroker"):
        return "embedded worker (in-process, no broker)"
    if broker.endswith("RedisBroker"):
        import redis

        client = redis.Redis.from_url(
            url, socket_connect_timeout=BROKER_TIMEOUT_S, socket_timeout=BROKER_TIMEOUT_S
        )
        try:
            client.ping()
        finally:
            client.close()
        return "redis reachable"
    if broker.endswith("RabbitmqBroker"):
        import pika

        params = pika.URLParameters(url)
        params.socket_timeout = BROKER_TIMEOUT_S
        params.connection_attempts = 1
        pika.BlockingConnection(params).close()
        return "rabbitmq reachable"
    raise HealthError(f"unknown broker {broker}")


def storage_check() -> str:
    root = Path(settings.STORAGE_ROOT)
    if not root.is_dir():
        raise HealthError(f"storage {root} is not a directory")
    probe = root / f".healthz-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"ok")
    except OSError as exc:
        raise HealthError(f"storage {root} is not writable ({exc.strerror})") from None
    finally:
        probe.unlink(missing_ok=True)
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        raise HealthError(f"storage {root} has only {free // 1024**2} MiB free")
    return f"writable, {free / 1024**3:.1f} GiB free"


def _describe(exc: BaseException) -> str:
    """One line, no credentials (a URL's user:password is replaced)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = _CREDENTIALS.sub(r"\1***@", text)[:300]
    if isinstance(exc, HealthError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def health_run(checks: Mapping[str, Check]) -> tuple[bool, dict[str, CheckResult]]:
    """Run every check (all of them, even after a failure); (all ok, results by name)."""
    results: dict[str, CheckResult] = {}
    for name, check in checks.items():
        t0 = time.perf_counter()
        try:
            detail, ok = check(), True
        except Exception as exc:  # noqa: BLE001 - a failing check is a result, not an error
            detail, ok = _describe(exc), False
        results[name] = CheckResult(ok=ok, detail=detail, ms=(time.perf_counter() - t0) * 1e3)
    return all(r.ok for r in results.values()), results

"""The plumbing checks of /healthz: each on its real part, and the runner that never raises."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lesionloop.core import health

REDIS_URL = "redis://127.0.0.1:6379/14"


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _broker(settings: Any, cls: str, url: str = "") -> None:
    settings.DRAMATIQ_BROKER = {"BROKER": cls, "OPTIONS": {"url": url} if url else {}}


@pytest.mark.parametrize(
    ("cls", "url", "ok", "detail"),
    [
        ("dramatiq.brokers.stub.StubBroker", "", True, "embedded"),
        ("dramatiq.brokers.redis.RedisBroker", REDIS_URL, True, "redis reachable"),
        ("dramatiq.brokers.redis.RedisBroker", "redis://127.0.0.1:{closed}/0", False, "Connect"),
        (
            "dramatiq.brokers.rabbitmq.RabbitmqBroker",
            "amqp://guest:guest@127.0.0.1:{closed}/",
            False,
            "",
        ),
        ("my.OwnBroker", "x://", False, "unknown broker my.OwnBroker"),
    ],
)
def test_broker_check(settings: Any, cls: str, url: str, ok: bool, detail: str) -> None:
    _broker(settings, cls, url.format(closed=_closed_port()))
    passed, results = health.health_run({"broker": health.broker_check})
    assert passed is ok and results["broker"].ok is ok, results
    assert detail in results["broker"].detail
    assert "guest:guest" not in results["broker"].detail


@pytest.mark.parametrize(
    ("make", "free", "ok", "detail"),
    [
        (lambda root: root, 10 * 1024**3, True, "writable, 10.0 GiB free"),
        (lambda root: root / "missing", 10 * 1024**3, False, "is not a directory"),
        (
            lambda root: (root / "file").write_text("x") and root / "file",
            10**10,
            False,
            "not a dir",
        ),
        (lambda root: root, 5 * 1024**2, False, "has only 5 MiB free"),
    ],
)
def test_storage_check(
    tmp_path: Path, settings: Any, monkeypatch: Any, make: Any, free: int, ok: bool, detail: str
) -> None:
    settings.STORAGE_ROOT = make(tmp_path)
    monkeypatch.setattr(health.shutil, "disk_usage", lambda _: SimpleNamespace(free=free))
    _, results = health.health_run({"storage": health.storage_check})
    assert results["storage"].ok is ok and detail in results["storage"].detail, results
    assert not list(tmp_path.glob(".healthz-*")), "the probe file is removed"


@pytest.mark.django_db
def test_database_check_on_postgresql() -> None:
    assert health.database_check() == "postgresql reachable"


def test_runner_runs_every_check_and_hides_credentials() -> None:
    def boom() -> str:
        raise ConnectionError("cannot reach postgres://app:s3cret@db:5432/x\nsecond line")

    def empty() -> str:
        raise RuntimeError()

    ok, results = health.health_run({"a": boom, "b": lambda: "fine", "c": empty})
    assert ok is False
    assert [r.ok for r in results.values()] == [False, True, False]
    assert results["a"].detail == "ConnectionError: cannot reach postgres://***@db:5432/x"
    assert results["b"].detail == "fine" and results["c"].detail == "RuntimeError"
    assert all(r.ms >= 0 for r in results.values())

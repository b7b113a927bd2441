"""GET /healthz: 200 with every check, 503 naming the failing one; no login, any Host.

Stubbed failures for each dependency (table), then the real part: PostgreSQL, Redis and a
storage folder, with the broker and the storage really broken.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lesionloop.core.health import HealthError
from lesionloop.viewer import health

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[3]
CHECKS = ["database", "broker", "storage", "active_model"]


def _fail(message: str) -> Any:
    def check() -> str:
        raise HealthError(message)

    return check


@pytest.fixture
def stubbed(monkeypatch: Any) -> dict[str, Any]:
    table = {name: (lambda name=name: f"{name} fine") for name in CHECKS}
    monkeypatch.setattr(health, "health_checks", lambda: table)
    return table


def test_all_good_is_200_with_every_check(client: Any, stubbed: dict[str, Any]) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert {n: c["detail"] for n, c in body["checks"].items()} == {n: f"{n} fine" for n in CHECKS}


@pytest.mark.parametrize("failing", [[name] for name in CHECKS] + [["broker", "storage"], CHECKS])
def test_a_failing_dependency_is_503_naming_it(
    client: Any, stubbed: dict[str, Any], failing: list[str]
) -> None:
    for name in failing:
        stubbed[name] = _fail(f"{name} is down")
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing" and body["failing"] == failing
    for name in CHECKS:
        check = body["checks"][name]
        assert check["ok"] is (name not in failing)
        assert check["detail"] == (f"{name} is down" if name in failing else f"{name} fine")


@pytest.mark.parametrize(
    ("method", "path", "host", "status"),
    [
        ("get", "/healthz", "10.0.0.7:8000", 200),  # a load balancer, by IP: not in ALLOWED_HOSTS
        ("get", "/healthz/", "localhost", 200),
        ("head", "/healthz", "localhost", 200),
        ("post", "/healthz", "localhost", 405),
        ("get", "/healthzz", "localhost", 404),
    ],
)
def test_no_login_any_host(
    client: Any, stubbed: dict[str, Any], method: str, path: str, host: str, status: int
) -> None:
    response = getattr(client, method)(path, HTTP_HOST=host)
    assert response.status_code == status


def test_the_database_failing(client: Any, monkeypatch: Any) -> None:
    from django.db import OperationalError, connection

    def broken_cursor(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection to server at 10.0.0.5 failed: timeout expired")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    body = client.get("/healthz").json()
    assert body["failing"] == ["database", "active_model"]  # the registry reads it too
    assert body["checks"]["database"]["detail"].startswith("OperationalError: connection")


def test_real_postgresql_redis_and_storage(
    client: Any, settings: Any, tmp_path: Path, cast: Any
) -> None:
    """The real parts: all good, then the broker and the storage really broken."""
    import socket

    from tests.platform_tests.studies.helpers import model_version, tiny_model_dir

    settings.STORAGE_ROOT = tmp_path / "storage"
    settings.STORAGE_ROOT.mkdir()
    settings.DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.redis.RedisBroker",
        "OPTIONS": {"url": "redis://127.0.0.1:6379/14"},
    }
    tiny_model_dir(settings.STORAGE_ROOT / "models" / "v1")
    model_version("v1", "active", weights_dir="models/v1")
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert checks["database"]["detail"] == "postgresql reachable"
    assert checks["broker"]["detail"] == "redis reachable"
    assert checks["active_model"]["detail"] == "v1 (2 weight files)"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    settings.DRAMATIQ_BROKER["OPTIONS"]["url"] = f"redis://127.0.0.1:{closed}/0"
    (settings.STORAGE_ROOT / "models" / "v1" / "unet.pt").unlink()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker", "active_model"]


@pytest.mark.parametrize(("checks", "code"), [("database,storage", 0), ("nope", 1)])
def test_health_command(checks: str, code: int) -> None:
    from django.core.management import CommandError, call_command

    if code:
        with pytest.raises(CommandError, match="unknown check"):
            call_command("health", "--checks", checks)
    else:
        call_command("health", "--checks", checks)


def test_health_command_exits_1_when_a_check_fails(stubbed: dict[str, Any], capsys: Any) -> None:
    from django.core.management import call_command

    stubbed["storage"] = _fail("storage gone")
    with pytest.raises(SystemExit) as exc:
        call_command("health", "--json")
    assert exc.value.code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["checks"]["storage"] == {
        "ok": False,
        "detail": "storage gone",
    }


def test_healthz_is_cheap_no_torch(tmp_path: Path) -> None:
    """A whole /healthz in a fresh process imports no torch (and no ml network code)."""
    code = (
        "import django, sys; django.setup()\n"
        "from django.test import Client\n"
        "r = Client().get('/healthz')\n"
        "print(r.status_code, 'torch' in sys.modules)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}",
        "DJANGO_SETTINGS_MODULE": "lesionloop.settings.test",
        "LESIONLOOP_STORAGE": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    status, torch_loaded = result.stdout.split()
    assert status in {"200", "503"} and torch_loaded == "False", result.stdout

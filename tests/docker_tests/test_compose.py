"""The compose files, validated without a container engine.

``docker compose config`` (the CLI plugin) or Debian's ``docker-compose config`` (installed by
.ci/run) interpolates and merges the files exactly as ``up`` would; the rules are then checked
on the YAML it prints: every long-running service restarts unless stopped and has a health
check, the one-off ``migrate`` gates every service that touches the database, volumes are
named, and no secret has a default (raw files, before interpolation).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"
SECRETS = {"SECRET_KEY": "s" * 60, "POSTGRES_PASSWORD": "pg-pw", "REDIS_PASSWORD": "redis-pw"}
REMOTE = {
    "SECRET_KEY": "s" * 60,
    "DATABASE_URL": "postgres://lesionloop:pg-pw@main:5432/lesionloop",
    "DRAMATIQ_BROKER_URL": "redis://:redis-pw@main:6379/0",
    "STORAGE_NFS_HOST": "nfs.example.org",
    "STORAGE_NFS_PATH": "/exports/lesionloop",
}
# (files, environment, services that must be there)
STACKS = [
    (
        ["compose.yml"],
        SECRETS,
        {
            "db",
            "redis",
            "migrate",
            "web",
            "worker-default",
            "worker-infer",
            "worker-train",
            "dicom-listener",
        },
    ),
    (["compose.yml", "compose.gpu.yml"], SECRETS, {"worker-infer", "worker-train"}),
    (["compose.remote-gpu.yml"], REMOTE, {"worker-infer"}),
]
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|AUTH")
CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]*:([^@/\s]+)@")


def _validator() -> list[str]:
    docker = shutil.which("docker")
    if docker:
        plugin = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60)
        if plugin.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    pytest.fail(
        "neither `docker compose` nor `docker-compose` is installed (.ci/run installs "
        "Debian's docker-compose: apt-get install docker-compose)"
    )


def _config(files: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    args = [*_validator()]
    for name in files:
        args += ["-f", str(DOCKER / name)]
    args += ["--env-file", str(empty_env_file), "config"]
    clean = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), **env}
    return subprocess.run(args, capture_output=True, text=True, env=clean, timeout=120)


def _source(mount: Any) -> str:
    """A mount's source in the long (compose v2) or short (docker-compose 1.x) syntax."""
    return mount["source"] if isinstance(mount, dict) else mount.split(":")[0]


def _one_offs(services: dict[str, Any]) -> set[str]:
    """Services others wait for with ``service_completed_successfully``."""
    found = set()
    for spec in services.values():
        for name, cond in (spec.get("depends_on") or {}).items():
            if isinstance(cond, dict) and cond.get("condition") == "service_completed_successfully":
                found.add(name)
    return found


@pytest.mark.parametrize(("files", "env", "expected"), STACKS, ids=lambda v: str(v)[:40])
def test_stack_is_valid_and_follows_the_rules(
    files: list[str], env: dict[str, str], expected: set[str], tmp_path: Path
) -> None:
    result = _config(files, env, tmp_path)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert expected <= set(services)
    one_offs = _one_offs(services)
    named = set(config.get("volumes") or {})
    for name, spec in services.items():
        restart = str(spec.get("restart")).lower()
        if name in one_offs:
            assert restart in {"no", "false"}, f"{name} runs once: restart must be 'no'"
        else:
            assert restart == "unless-stopped", f"{name}: restart {spec.get('restart')!r}"
            check = spec.get("healthcheck") or {}
            assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        for mount in spec.get("volumes") or []:
            source = _source(mount)
            assert source in named, f"{name} mounts {source!r}, not a named volume"


def test_main_stack_gates_on_migrate_and_runs_the_listener(tmp_path: Path) -> None:
    config = yaml.safe_load(_config(["compose.yml"], SECRETS, tmp_path).stdout)
    services = config["services"]
    assert _one_offs(services) == {"migrate"}
    assert "migrate" in services["migrate"]["command"]
    for name in ("web", "worker-default", "worker-infer", "worker-train", "dicom-listener"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["db"]["condition"] == deps["redis"]["condition"] == "service_healthy", name
        assert services[name]["environment"]["LESIONLOOP_STORAGE"] == "/data/storage"
        assert any(_source(m) == "storage" for m in services[name]["volumes"]), name
    assert services["dicom-listener"]["command"][-1] == "dicom_listener"
    for queue, service in (
        ("gpu-infer", "worker-infer"),
        ("gpu-train", "worker-train"),
        ("default", "worker-default"),
    ):
        command = services[service]["command"]
        assert command[command.index("--queues") + 1] == queue
    assert {"pgdata", "redisdata", "storage"} <= set(config["volumes"])


@pytest.mark.parametrize(
    ("files", "env", "missing"),
    [(["compose.yml"], SECRETS, name) for name in SECRETS]
    + [(["compose.remote-gpu.yml"], REMOTE, name) for name in REMOTE],
)
def test_a_missing_secret_stops_the_stack_with_its_name(
    files: list[str], env: dict[str, str], missing: str, tmp_path: Path
) -> None:
    result = _config(files, {k: v for k, v in env.items() if k != missing}, tmp_path)
    assert result.returncode != 0
    assert missing in result.stderr


@pytest.mark.parametrize("name", ["compose.yml", "compose.gpu.yml", "compose.remote-gpu.yml"])
def test_no_secret_has_a_literal_or_default_value(name: str) -> None:
    """In the raw file: secrets are ``${VAR:?message}``, URLs carry no literal password."""
    raw = yaml.safe_load((DOCKER / name).read_text())
    blocks = [raw.get("x-env") or {}]
    blocks += [(spec or {}).get("environment") or {} for spec in raw["services"].values()]
    for block in blocks:
        for key, value in block.items():
            if key == "<<" or value is None:
                continue
            text = str(value)
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", text), f"{name}: {key}={text!r}"
            # The message of ``${VAR:?message}`` may show an example URL: it is not a value.
            match = CREDENTIALS_IN_URL.search(re.sub(r"\$\{(\w+):\?[^}]*\}", r"${\1}", text))
            if match:
                assert re.fullmatch(r"\$\{\w+\}", match.group(1)), (name, key)


def test_env_example_names_every_required_variable() -> None:
    example = (DOCKER / ".env.example").read_text()
    required = set()
    for name in ("compose.yml", "compose.remote-gpu.yml"):
        required |= set(re.findall(r"\$\{(\w+):\?", (DOCKER / name).read_text()))
    listed = set(re.findall(r"^#?\s*(\w+)=", example, flags=re.M))
    assert required and required <= listed, required - listed
    assert not re.search(r"^(SECRET_KEY|\w*PASSWORD)=\S", example, flags=re.M), "no values"

"""The compose files, validated without a container engine.

``docker compose config`` (the CLI plugin) or Debian's ``docker-compose config`` (installed by
.ci/run) interpolates and merges the files exactly as ``up`` would; the rules are then checked
on the YAML it prints: every long-running service restarts unless stopped and has a health
check, the one-off ``migrate`` gates every service that touches the database, volumes are
named (or a read-only script of docker/), and no secret has a default (raw files, before
interpolation). The database roles: ``migrate`` alone holds the owner's URL, every
long-running service connects as the app role, and the init script that makes both roles
is mounted into the postgres image (tested itself in test_init_roles.py).
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
SECRETS = {
    "SECRET_KEY": "s" * 60,
    "POSTGRES_PASSWORD": "pg-super-pw",
    "LESIONLOOP_OWNER_PASSWORD": "owner-pw",
    "LESIONLOOP_APP_PASSWORD": "app-pw",
    "REDIS_PASSWORD": "redis-pw",
}
LONG_RUNNING = ("web", "worker-default", "worker-infer", "worker-train", "dicom-listener")
INIT_DIR = "/docker-entrypoint-initdb.d/"
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


def _mount(mount: Any) -> tuple[str, str, bool]:
    """(source, target, read-only) in either syntax."""
    if isinstance(mount, dict):
        return mount["source"], mount["target"], bool(mount.get("read_only"))
    source, target, *mode = mount.split(":")
    return source, target, "ro" in mode


def _allowed_mount(mount: Any, named: set[str]) -> bool:
    """A named volume, or a read-only file of this repository's docker/ folder (scripts)."""
    source, _, read_only = _mount(mount)
    if source in named:
        return True
    path = Path(source)
    return read_only and path.is_file() and DOCKER in path.resolve().parents


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
            assert _allowed_mount(mount, named), f"{name} mounts {mount!r}, not a named volume"


def test_main_stack_gates_on_migrate_and_runs_the_listener(tmp_path: Path) -> None:
    config = yaml.safe_load(_config(["compose.yml"], SECRETS, tmp_path).stdout)
    services = config["services"]
    assert _one_offs(services) == {"migrate"}
    for name in LONG_RUNNING:
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


def _url_user(url: str) -> tuple[str, str]:
    """(role, password) of a ``postgres://role:password@host/db`` URL."""
    match = re.fullmatch(r"postgres://([^:@/]+):([^@/]+)@db:5432/lesionloop", url)
    assert match, url
    return match.group(1), match.group(2)


def test_migrate_runs_as_the_owner_and_the_services_as_the_app_role(tmp_path: Path) -> None:
    services = yaml.safe_load(_config(["compose.yml"], SECRETS, tmp_path).stdout)["services"]
    db = services["db"]["environment"]
    owner, app = db["LESIONLOOP_OWNER_ROLE"], db["LESIONLOOP_APP_ROLE"]
    assert owner != app and "postgres" not in {owner, app}
    assert db["POSTGRES_USER"] == "postgres"  # the superuser, used by no app service
    assert db["LESIONLOOP_OWNER_PASSWORD"] == SECRETS["LESIONLOOP_OWNER_PASSWORD"]
    assert db["LESIONLOOP_APP_PASSWORD"] == SECRETS["LESIONLOOP_APP_PASSWORD"]
    migrate = services["migrate"]
    assert _url_user(migrate["environment"]["DATABASE_OWNER_URL"]) == (
        owner,
        SECRETS["LESIONLOOP_OWNER_PASSWORD"],
    )
    command = " ".join(migrate["command"])
    assert "manage.py migrate --noinput &&" in command  # grants only after a migration
    grants = command.split("&&")[1].split()
    assert grants[grants.index("--app-role") + 1] == app
    assert grants[grants.index("--owner-role") + 1] == owner
    assert {"db_roles", "--grants-only", "--apply"} <= set(grants)
    for name in (*LONG_RUNNING, "migrate"):
        env = services[name]["environment"]
        assert _url_user(env["DATABASE_URL"]) == (app, SECRETS["LESIONLOOP_APP_PASSWORD"]), name
    # the owner's and the superuser's passwords reach no long-running app service
    for name in LONG_RUNNING:
        text = yaml.safe_dump(services[name])
        assert "DATABASE_OWNER_URL" not in text, name
        assert SECRETS["LESIONLOOP_OWNER_PASSWORD"] not in text, name
        assert SECRETS["POSTGRES_PASSWORD"] not in text, name


def test_the_init_script_is_mounted_into_the_postgres_image(tmp_path: Path) -> None:
    services = yaml.safe_load(_config(["compose.yml"], SECRETS, tmp_path).stdout)["services"]
    scripts = [_mount(m) for m in services["db"]["volumes"] if _mount(m)[1].startswith(INIT_DIR)]
    assert len(scripts) == 1, services["db"]["volumes"]
    source, target, read_only = scripts[0]
    assert Path(source).resolve() == DOCKER / "postgres" / "init-roles.sh"
    assert target == INIT_DIR + "init-roles.sh" and read_only
    # executable: the entrypoint runs it in its own bash (a sourced one would share its shell)
    assert Path(source).stat().st_mode & 0o111
    assert Path(source).read_text().startswith("#!/usr/bin/env bash\n")

"""Guards on the layout and the import boundaries the architecture depends on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}"}
    return subprocess.run(
        [PY, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_platform_is_a_source_root_not_a_package() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()
    result = run_python("import platform, sys; print(platform.__file__); platform.python_version()")
    assert result.returncode == 0, result.stderr
    assert str(ROOT) not in result.stdout, "the stdlib platform module is shadowed"


def test_every_local_app_has_its_migrations_package() -> None:
    from django.conf import settings

    for label in settings.LOCAL_APPS:
        package = ROOT / "migrations" / label
        assert (package / "__init__.py").is_file(), f"migrations/{label}/__init__.py is missing"
        assert settings.MIGRATION_MODULES[label] == f"migrations.{label}"


@pytest.mark.django_db
def test_apps_with_models_have_migrations_that_the_loader_finds() -> None:
    from django.apps import apps
    from django.conf import settings
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connection)
    for label in settings.LOCAL_APPS:
        if list(apps.get_app_config(label).get_models()):
            assert label in loader.migrated_apps, f"{label} has models but no migrations found"


@pytest.mark.django_db
def test_makemigrations_is_clean() -> None:
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_ml_imports_no_django_drf_or_dramatiq() -> None:
    code = (
        "import importlib, pkgutil, sys, ml\n"
        "for m in pkgutil.walk_packages(ml.__path__, 'ml.'):\n"
        "    if m.name.split('.')[-1] in {'__main__'}: continue\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in {'django','rest_framework','dramatiq','django_dramatiq'})\n"
        "print(len([n for n in sys.modules if n.startswith('ml.')]), bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stdout + result.stderr


def test_web_modules_import_no_torch() -> None:
    code = (
        "import os, sys, importlib, pkgutil\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'lesionloop.settings.test'\n"
        "import django; django.setup()\n"
        "import lesionloop\n"
        "for m in pkgutil.walk_packages(lesionloop.__path__, 'lesionloop.'):\n"
        "    leaf = m.name.split('.')\n"
        "    if 'management' in leaf or 'settings' in leaf or leaf[-1] in {'wsgi', 'asgi'}: continue\n"
        "    importlib.import_module(m.name)\n"
        "import lesionloop.urls\n"
        "print('torch' in sys.modules)\n"
        "sys.exit(1 if 'torch' in sys.modules else 0)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, (
        "a web module imports torch at module level:\n" + result.stdout + result.stderr
    )


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [PY, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("secret", "ok", "message"),
    [
        ("k3y-" + "".join(chr(65 + (i * 7) % 26) for i in range(60)), True, ""),
        ("", False, "SECRET_KEY must be set"),
        ("short", False, "SECRET_KEY must be set"),
    ],
)
def test_production_settings_check_deploy(secret: str, ok: bool, message: str) -> None:
    # A deployment's environment: nothing the browser tests set for themselves.
    base = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {
        **base,
        "DJANGO_SETTINGS_MODULE": "lesionloop.settings.production",
        "SECRET_KEY": secret,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/lesionloop",
        "DRAMATIQ_BROKER_URL": "redis://127.0.0.1:6379/0",
        "ALLOWED_HOSTS": "lesionloop.example.org",
    }
    result = subprocess.run(
        [PY, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode != 0
        assert message in result.stderr

"""Settings for the test suite: PostgreSQL by default (``DATABASE_URL`` overrides)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import dj_database_url

from .base import *  # noqa: F403
from .base import dramatiq_broker_settings
from .env import env_int, env_str

DEBUG = False
SECRET_KEY = "test-only-key"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lesionloop"), conn_max_age=0
    )
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGE_ROOT = Path(os.environ.get("LESIONLOOP_STORAGE") or tempfile.mkdtemp(prefix="ll-test-"))
LESIONLOOP_GRID = env_str("LESIONLOOP_GRID", "tiny")
# Unit tests use the StubBroker; end-to-end tests start real workers against Redis.
DRAMATIQ_BROKER = dramatiq_broker_settings(env_str("LESIONLOOP_E2E_BROKER_URL"))
EMBEDDED_WORKER = False
# No sweeper thread in the unit tests' in-process workers; the real-worker tests turn it on.
LESIONLOOP_SWEEP_INTERVAL_S = env_int("LESIONLOOP_SWEEP_INTERVAL_S", 0, minimum=0)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

WHITENOISE_USE_FINDERS = True

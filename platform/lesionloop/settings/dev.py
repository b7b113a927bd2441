"""Default settings for the embedded single-command product (``scripts/serve.sh``)."""

from __future__ import annotations

from .base import *  # noqa: F403
from .env import env_bool, env_str

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY") or "dev-only-insecure-key-do-not-use-in-production"

WHITENOISE_USE_FINDERS = True

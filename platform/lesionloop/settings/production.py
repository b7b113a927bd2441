"""Production settings: PostgreSQL, a real broker, HTTPS. Fails loudly when misconfigured."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DATABASES, DRAMATIQ_BROKER_URL, SECRET_KEY
from .env import env_bool, env_int

DEBUG = False
if not SECRET_KEY or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random string of at least 50 characters in production "
        "(python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and not env_bool(
    "LESIONLOOP_ALLOW_SQLITE", False
):
    raise ImproperlyConfigured(
        "Production needs DATABASE_URL=postgres://... (SQLite is for the demo)."
    )
if not DRAMATIQ_BROKER_URL:
    raise ImproperlyConfigured("Production needs DRAMATIQ_BROKER_URL=redis://... or amqp://...")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "lesionloop.core.staticfiles.ModuleAwareStaticFilesStorage"},
}

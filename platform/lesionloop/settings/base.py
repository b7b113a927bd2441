"""Settings shared by every environment. Everything comes from the environment.

``DATABASE_URL``          default: SQLite file under ``var/`` (embedded mode)
``DATABASE_OWNER_URL``    PostgreSQL: the owner role that migrations run as (optional)
``DRAMATIQ_BROKER_URL``   ``redis://...`` or ``amqp://...``; empty = embedded
                          in-process worker (one command serves the whole product)
``LESIONLOOP_STORAGE``    where images, masks and model weights live (default ``var/storage``)
``SECRET_KEY``            required when DEBUG is off
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_choice, env_int, env_list, env_str

PROJECT_ROOT = Path(__file__).resolve().parents[3]
VAR_DIR = Path(env_str("LESIONLOOP_VAR", str(PROJECT_ROOT / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_dramatiq",
    "axes",
    "lesionloop.core",
    "lesionloop.accounts",
    "lesionloop.audit",
    "lesionloop.studies",
    "lesionloop.review",
    "lesionloop.registry",
    "lesionloop.training",
    "lesionloop.pacs",
    "lesionloop.loop",
    "lesionloop.viewer",
]

# Every local app keeps its migrations in the top-level migrations/ folder.
LOCAL_APPS = [
    "core",
    "accounts",
    "audit",
    "studies",
    "review",
    "registry",
    "training",
    "pacs",
    "loop",
    "viewer",
]
MIGRATION_MODULES = {label: f"migrations.{label}" for label in LOCAL_APPS}

MIDDLEWARE = [
    # First: load balancers call /healthz over HTTP, by IP, without a session.
    "lesionloop.viewer.health.HealthzMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # last: turns a lock-out flagged during authentication into its response
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "lesionloop.urls"
WSGI_APPLICATION = "lesionloop.wsgi.application"
ASGI_APPLICATION = "lesionloop.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "lesionloop.accounts.context_processors.roles",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'lesionloop.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded worker writes from other threads; wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
elif "postgresql" in DATABASES["default"]["ENGINE"]:
    # A database that does not answer fails a request (and /healthz) in seconds, not minutes.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 10)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

# The role that owns the schema and runs migrations (docs/SECURITY.md): with it set,
# DATABASE_URL is the application's confined role and ``manage.py migrate`` connects
# as the owner (core/dbowner.py). Same database, other credentials.
DATABASE_OWNER_URL = env_str("DATABASE_OWNER_URL")
if DATABASE_OWNER_URL:
    _owner = dj_database_url.parse(DATABASE_OWNER_URL)
    if (_owner["ENGINE"], _owner["NAME"]) != (
        DATABASES["default"]["ENGINE"],
        DATABASES["default"]["NAME"],
    ):
        raise ImproperlyConfigured(
            "DATABASE_OWNER_URL must name the same PostgreSQL database as DATABASE_URL "
            "(only the role differs)."
        )

# --- login lock-out (django-axes; accounts/lockout.py, docs/SECURITY.md) ------------
# The axes backend goes first: it refuses a locked-out username or IP before any
# password is checked, on the session login, the admin login and the token endpoint.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("LESIONLOOP_LOGIN_LOCKOUT", True)
# Failures for one username, or from one IP address (each counted on its own), lock it.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = env_int("LESIONLOOP_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LESIONLOOP_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "lesionloop.accounts.lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
# Our audit trail records logins and lock-outs; axes keeps only its counters.
AXES_DISABLE_ACCESS_LOG = True
# Behind N reverse proxies that append to X-Forwarded-For, the client is the N-th
# address from its right; 0 (default) trusts only REMOTE_ADDR (accounts/lockout.py).
LESIONLOOP_PROXY_COUNT = env_int("LESIONLOOP_PROXY_COUNT", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "lesionloop.accounts.lockout.client_ip"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [PROJECT_ROOT / "frontend_static"]

STORAGE_ROOT = Path(env_str("LESIONLOOP_STORAGE", str(VAR_DIR / "storage")))
UPLOAD_MAX_BYTES = env_int("LESIONLOOP_UPLOAD_MAX_BYTES", 2 * 1024**3, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# A DICOM folder is one file per slice: a CT plus an MR is easily 400+ files.
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("LESIONLOOP_UPLOAD_MAX_FILES", 4000, minimum=1)

# --- the model grid and the loop -------------------------------------------------
LESIONLOOP_GRID = env_str("LESIONLOOP_GRID", "lite")
LESIONLOOP_DEVICE = env_str("LESIONLOOP_DEVICE", "auto")
LESIONLOOP_RETRAIN_AFTER_APPROVALS = env_int("LESIONLOOP_RETRAIN_AFTER_APPROVALS", 10, minimum=0)
LESIONLOOP_TRAIN_MAX_MINUTES = env_int("LESIONLOOP_TRAIN_MAX_MINUTES", 60, minimum=1)
LESIONLOOP_LEASE_SECONDS = env_int("LESIONLOOP_LEASE_SECONDS", 120, minimum=10)
# Review time: a lease renewal that reports user activity adds the time since the tab's
# previous renewal, at most this many seconds (the viewer renews within ~10 s of activity).
LESIONLOOP_REVIEW_GAP_CAP_SECONDS = env_int("LESIONLOOP_REVIEW_GAP_CAP_SECONDS", 15, minimum=1)
# A saved mask with more distinct lesion labels is refused (400 bad_mask): a mask of
# random labels would otherwise create tens of thousands of lesion rows.
LESIONLOOP_MAX_LESION_LABELS = env_int("LESIONLOOP_MAX_LESION_LABELS", 500, minimum=1)
# ROIs of a planning system's RT Structure Set (in an upload, a received study or an
# archive import) whose names match this regular expression are the lesions (ground
# truth); the others (PTV, organs at risk) are listed as ignored. Empty = never import.
LESIONLOOP_GTV_PATTERN = env_str("LESIONLOOP_GTV_PATTERN", r"(?i)^\s*gtv")
try:
    re.compile(LESIONLOOP_GTV_PATTERN)
except re.error as _exc:
    raise ImproperlyConfigured(
        f"LESIONLOOP_GTV_PATTERN is not a valid regular expression ({_exc})"
    ) from None

# --- the DICOM network (docs/DICOM.md) --------------------------------------------
LESIONLOOP_DICOM_AE_TITLE = env_str("LESIONLOOP_DICOM_AE_TITLE", "LESIONLOOP")
LESIONLOOP_DICOM_PORT = env_int("LESIONLOOP_DICOM_PORT", 11112, minimum=1)
LESIONLOOP_DICOM_BIND = env_str("LESIONLOOP_DICOM_BIND", "0.0.0.0")
# Calling AE titles allowed to associate (empty: any); CIDR networks allowed to connect.
LESIONLOOP_DICOM_ALLOWED_AETS = env_list("LESIONLOOP_DICOM_ALLOWED_AETS", [])
LESIONLOOP_DICOM_ALLOWED_NETWORKS = env_list("LESIONLOOP_DICOM_ALLOWED_NETWORKS", [])
# A received study is complete when nothing new arrived for this long.
LESIONLOOP_DICOM_QUIET_SECONDS = env_int("LESIONLOOP_DICOM_QUIET_SECONDS", 30, minimum=1)
# The CT and the MR are two DICOM studies of one patient: a received study joins the
# study of the same PatientID received within this many hours (e.g. a late MR).
LESIONLOOP_DICOM_PAIR_HOURS = env_int("LESIONLOOP_DICOM_PAIR_HOURS", 12, minimum=0)
# When a received object reaches the disk (docs/DICOM.md, Durability): "object" fsyncs
# each before answering success; "batch" fsyncs every LESIONLOOP_DICOM_FSYNC_INTERVAL_MS
# (an OS crash or power loss may lose that last window) and each study before completion.
LESIONLOOP_DICOM_FSYNC = env_choice("LESIONLOOP_DICOM_FSYNC", "batch", ("batch", "object"))
LESIONLOOP_DICOM_FSYNC_INTERVAL_MS = env_int("LESIONLOOP_DICOM_FSYNC_INTERVAL_MS", 500, minimum=10)
# Dotted paths called with (study_id=, files=) for objects that arrive after ingest:
# a planning system's RTSTRUCT becomes the ground truth of a study nobody reviewed yet.
LESIONLOOP_DICOM_LATE_OBJECT_HOOKS: list[str] = ["lesionloop.loop.flows.late_structure_set"]

# --- Dramatiq ---------------------------------------------------------------------
DRAMATIQ_BROKER_URL = env_str("DRAMATIQ_BROKER_URL")
_DRAMATIQ_MIDDLEWARE = [
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Retries",
    "dramatiq.middleware.CurrentMessage",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
    # Workers on the default queue run the job sweeper (lesionloop.loop.sweeper).
    "lesionloop.loop.sweeper.SweeperMiddleware",
]

# --- Recovery: heartbeats and the sweeper (docs/PLATFORM.md, "Nothing is stuck") -----
# A running job's worker writes its heartbeat this often (seconds).
LESIONLOOP_JOB_HEARTBEAT_S = env_int("LESIONLOOP_JOB_HEARTBEAT_S", 5, minimum=1)
# A running job whose heartbeat is older than this lost its worker: it is queued again.
LESIONLOOP_JOB_STALE_S = env_int("LESIONLOOP_JOB_STALE_S", 45, minimum=2)
# A queued job older than this whose message the broker no longer holds is sent again.
LESIONLOOP_JOB_REQUEUE_S = env_int("LESIONLOOP_JOB_REQUEUE_S", 60, minimum=1)
# A job whose worker died this many times is failed instead (it may be what kills it).
LESIONLOOP_JOB_MAX_ATTEMPTS = env_int("LESIONLOOP_JOB_MAX_ATTEMPTS", 3, minimum=1)
# How often each default-queue worker process sweeps (seconds); 0 turns the sweeper off.
LESIONLOOP_SWEEP_INTERVAL_S = env_int("LESIONLOOP_SWEEP_INTERVAL_S", 15, minimum=0)
if LESIONLOOP_JOB_STALE_S <= 2 * LESIONLOOP_JOB_HEARTBEAT_S:
    raise ImproperlyConfigured(
        f"LESIONLOOP_JOB_STALE_S ({LESIONLOOP_JOB_STALE_S}) must exceed two heartbeats "
        f"(LESIONLOOP_JOB_HEARTBEAT_S={LESIONLOOP_JOB_HEARTBEAT_S}): live jobs would be requeued"
    )


def dramatiq_broker_settings(url: str) -> dict[str, object]:
    """Pick the broker class from the URL scheme; empty means embedded (in-process)."""
    if not url:
        return {
            "BROKER": "dramatiq.brokers.stub.StubBroker",
            "OPTIONS": {},
            "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE,
        }
    scheme = url.split(":", 1)[0].lower()
    if scheme in {"redis", "rediss", "unix"}:
        broker = "dramatiq.brokers.redis.RedisBroker"
    elif scheme in {"amqp", "amqps"}:
        broker = "dramatiq.brokers.rabbitmq.RabbitmqBroker"
    else:
        raise ImproperlyConfigured(
            f"DRAMATIQ_BROKER_URL={url!r}: the scheme must be redis://, rediss:// or amqp://"
        )
    return {"BROKER": broker, "OPTIONS": {"url": url}, "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE}


DRAMATIQ_BROKER = dramatiq_broker_settings(DRAMATIQ_BROKER_URL)
EMBEDDED_WORKER = not DRAMATIQ_BROKER_URL
DRAMATIQ_TASKS_DATABASE = "default"
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]

# --- DRF --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "lesionloop.core.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "lesionloop.core.api.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LesionLoop API",
    "DESCRIPTION": "Studies, lesion review, model registry and audit trail for SRS contouring.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema lists every endpoint and filter: only logged-in users (session or token)
    # read it; /api/docs/ sends a browser to the login page (urls.py).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.server": {"level": "WARNING"},
        # pynetdicom logs every association and object at INFO: the listener's own log says
        # what matters (refusals, failures)
        "pynetdicom": {"level": "WARNING"},
    },
}

# Functions run when the embedded worker starts, to re-enqueue unfinished jobs.
LESIONLOOP_RECOVERY_HOOKS: list[str] = []
LESIONLOOP_RECOVERY_HOOKS.append("lesionloop.training.services.training_runs_recover")
LESIONLOOP_RECOVERY_HOOKS.append("lesionloop.studies.services.jobs_recover")

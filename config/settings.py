"""Settings for Critique Loop, read from the environment (12-factor).

DATABASE_URL  default: a SQLite file beside manage.py
SECRET_KEY    required when DEBUG is off
DEBUG         "true"/"false", default true for a laptop checkout
ALLOWED_HOSTS comma-separated, default "127.0.0.1,localhost"
"""

import os
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}.")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}.") from None


def envfloat(name: str, default: float | None = None) -> float | None:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}.") from None


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", "true")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY when DEBUG is false.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "template_partials",
    "django_htmx",
    "django_filters",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # annotate before django_tasks_db: its db_worker command may extend the library's.
    "annotate",
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=envint("CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE takes the write lock at BEGIN, so two writers queue up on the busy
        # timeout instead of one failing with "database is locked" when it upgrades.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so tests that use several threads share one database; one per
    # process, so two test runs on one machine don't share it.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"critique-test-{os.getpid()}.sqlite3")
    }

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and envbool(
    "DB_PREPARED_STATEMENTS", "true"
):
    # Server-side parameters, so psycopg prepares a statement once a connection has run it
    # twice, and PostgreSQL stops planning the queue's queries anew on every page. Turn this
    # off behind a pooler in transaction mode (PgBouncer before 1.21), which can't keep them.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=2
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ModelBackend, with the user's roles loaded in the same query (annotate/roles.py).
AUTHENTICATION_BACKENDS = ["annotate.roles.RoleBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotate:home"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("THROTTLE_ANON", "60/min"),
        "user": os.environ.get("THROTTLE_USER", "6000/min"),
        "token": os.environ.get("THROTTLE_TOKEN", "20/min"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Critique Loop API",
    "DESCRIPTION": "Responses, judgments, rounds and CUT training runs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# How long a task handed to an annotator stays reserved for them.
RESERVATION_MINUTES = envint("RESERVATION_MINUTES", 15)

# Where train_cut writes snapshots and adapters unless --output is given.
TRAINING_DIR = Path(os.environ.get("TRAINING_DIR", BASE_DIR / "runs"))

# Jobs (Django's tasks API, DEP 14): the queue lives in this database; `manage.py db_worker`
# runs them. Model work (training, generation, the lens) goes to the "gpu" queue.
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "gpu", "lens"],
    }
}

# The critique lens (annotate/lens.py). Its jobs have a queue of their own, "lens": a preview
# must answer in seconds, and on "gpu" it would wait behind a training run for hours. Run
# `manage.py db_worker --queue-name lens --interval 0.1` (it keeps the model loaded).
LENS_QUEUE = os.environ.get("LENS_QUEUE", "lens")
LENS_BASE_MODEL = os.environ.get("LENS_BASE_MODEL") or None  # None: the embedded SmolLM2
LENS_ADAPTER = os.environ.get("LENS_ADAPTER") or None
LENS_THRESHOLD = envfloat("LENS_THRESHOLD")  # λ; None: the trainer's default (1.1)
# CPU threads the lens worker's torch uses (0: torch's default, one per core). One by
# default: a preview is small, and on a busy machine more threads than free cores make it
# several times slower (measured: 630 tokens, 5 s with 1 thread and 23 s with 2 on 2 cores).
LENS_THREADS = envint("LENS_THREADS", 1)
# Compute the lens of the negative judgments an import brings in (on the lens worker).
LENS_AFTER_IMPORT = envbool("LENS_AFTER_IMPORT", "false")

# A running job whose worker has not written its heartbeat for this many seconds lost its
# worker (killed, machine gone): it shows as interrupted and can be resumed.
RUN_HEARTBEAT_TIMEOUT = envint("RUN_HEARTBEAT_TIMEOUT", 120)
# How often a job writes its progress (series, log tail) and heartbeat, in seconds.
JOB_FLUSH_SECONDS = envfloat("JOB_FLUSH_SECONDS", 2.0)
# A worker writes its own heartbeat (annotate.workers) this often; workers.alive() counts
# one as listening while it was seen within WORKER_ALIVE_SECONDS.
WORKER_HEARTBEAT_SECONDS = envfloat("WORKER_HEARTBEAT_SECONDS", 10.0)
WORKER_ALIVE_SECONDS = envint("WORKER_ALIVE_SECONDS", 60)
# Training processes per run on a worker: 0 = one per GPU of the box (data parallel with
# `accelerate launch` when more than one), 1 = a single process.
TRAINING_NUM_PROCESSES = envint("TRAINING_NUM_PROCESSES", 0)
# This site's address, for links printed by commands (train_cut --queue).
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

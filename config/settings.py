"""PayCRM settings, read from the environment only.

With no variables set this is the embedded default: SQLite file, Celery eager,
console e-mail, DEBUG on. Production differs by variables alone (README lists them).
"""

from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# ---------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=True)

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-never-use-in-production-0123456789abcdef"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

# "id:base64 32 bytes", newest first, comma-separated (core/crypto.py). Encrypts
# sensitive fields (bank accounts, ID numbers); older keys stay for decryption.
_DEV_FIELD_KEY = "dev:ZGV2LW9ubHktZmllbGQta2V5LTMyLWJ5dGVzLWxvbiE="
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default=_DEV_FIELD_KEY if DEBUG else "")
if not FIELD_ENCRYPTION_KEY:
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.apps.PayCRMAdminConfig",  # the OTP-protected admin site replaces the default one
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "simple_history",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_countries",
    "core",
    "merchants",
    "onboarding",
    "settlements",
    "risk",
    "customers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # After OTPMiddleware: a signed-in user without a verified second factor
    # reaches only the sign-in, enrolment, verification and sign-out pages.
    "core.middleware.RequireSecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Sets the acting user and origin for history rows written by this request.
    "core.middleware.AuditContextMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
                "django.template.context_processors.i18n",
                "core.context_processors.navigation",
            ],
        },
    },
]

# ---------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE takes the write lock when
    # a transaction starts, so read-then-write blocks never fail with "locked".
    # https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-transaction-behavior
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=20000; "
            "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
        ),
    }
elif _db["ENGINE"] == "django.db.backends.postgresql":
    # psycopg 3 pool, one per process; persistent connections must stay off with it.
    _db["CONN_MAX_AGE"] = 0
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN", default=1),
        "max_size": env.int("DB_POOL_MAX", default=10),
        "timeout": env.int("DB_POOL_TIMEOUT", default=10),
    }
_db["ATOMIC_REQUESTS"] = False

# ---------------------------------------------------------------------------
# Celery
# ---------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
# No broker configured: run tasks in-process and let their errors surface.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redelivery after this long without an ack; keep above the longest task.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_TIMEZONE = env.str("TIME_ZONE", default="Asia/Hong_Kong")
CELERY_BEAT_SCHEDULE = {
    "clear-expired-sessions": {
        "task": "core.tasks.clear_expired_sessions",
        "schedule": 60 * 60,
    },
    "onboarding-sla-reminders": {
        "task": "onboarding.tasks.sla_reminders",
        "schedule": 15 * 60,
    },
    # Entries are sealed right after their transaction commits; this catches
    # any whose writer died between commit and seal.
    "audit-trail-seal": {
        "task": "core.tasks.audit_trail_seal",
        "schedule": 60,
    },
    # A signed checkpoint of the trail's head outside the database; the
    # interval bounds what a truncation of the newest entries can hide.
    "audit-trail-checkpoint": {
        "task": "core.tasks.audit_trail_checkpoint",
        "schedule": env.int("AUDIT_CHECKPOINT_SECONDS", default=300),
    },
    "overdue-task-digest": {
        "task": "merchants.tasks.overdue_task_digest",
        "schedule": crontab(hour=8, minute=0),  # daily, local time
    },
}

# ---------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# ---------------------------------------------------------------------------
# Auth and 2FA
# ---------------------------------------------------------------------------
AUTH_USER_MODEL = "core.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
LOGIN_URL = "core:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "core:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},  # PCI DSS 8.3.6
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="PayCRM")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# PCI DSS 8.3.4: lock after at most 10 failures for at least 30 minutes.
SIGN_IN_MAX_FAILURES = 5
SIGN_IN_LOCKOUT_MINUTES = 30
BACKUP_CODE_COUNT = 10

# Guardian: no anonymous object access in a staff CRM.
ANONYMOUS_USER_NAME = None
GUARDIAN_MONKEY_PATCH_USER = False

# simple-history: history models are not editable through their base model's rights.
SIMPLE_HISTORY_ENFORCE_HISTORY_MODEL_PERMISSIONS = True
SIMPLE_HISTORY_REVERT_DISABLED = True

# Sessions end after 15 idle minutes (PCI DSS 8.2.8): every request renews them.
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=15 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# ---------------------------------------------------------------------------
# Security
# ---------------------------------------------------------------------------
_secure = not DEBUG
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=_secure)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=_secure)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=_secure)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if _secure else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=_secure)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=_secure)
# Number of reverse proxies in front; their X-Forwarded-For entries are trusted.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

FORMS_URLFIELD_ASSUME_HTTPS = True  # Django 6.0 default, opted into now

# ---------------------------------------------------------------------------
# E-mail
# ---------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="PayCRM <noreply@paycrm.local>")

# ---------------------------------------------------------------------------
# i18n
# ---------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", _("English")),
    ("zh-hant", _("Traditional Chinese")),
    ("zh-hans", _("Simplified Chinese")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Hong_Kong")
USE_I18N = True
USE_TZ = True
DEFAULT_CURRENCY = env.str("DEFAULT_CURRENCY", default="HKD")

# ---------------------------------------------------------------------------
# Static files: the project's own under static/, front-end packages from npm
# ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve straight from the finders until collectstatic has run (development, tests).
WHITENOISE_USE_FINDERS = True
_npm = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/bootstrap", _npm / "bootstrap" / "dist"),
    ("vendor/bootstrap-icons", _npm / "bootstrap-icons" / "font"),
    ("vendor/htmx", _npm / "htmx.org" / "dist"),
    ("vendor/chart.js", _npm / "chart.js" / "dist"),
]
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "media/"
# Signed checkpoints of the audit trail's head live outside the database
# (core.checkpoints). Production: point "audit_checkpoints" at a write-once
# object store bucket (e.g. django-storages' S3 backend on a bucket with
# Object Lock in compliance mode) the application may write but not delete.
AUDIT_CHECKPOINT_DIR = env.path(
    "AUDIT_CHECKPOINT_DIR", default=BASE_DIR / "var" / "audit-checkpoints"
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "audit_checkpoints": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(AUDIT_CHECKPOINT_DIR)},
    },
}

# ---------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.IsVerified"],
    "DEFAULT_PAGINATION_CLASS": "core.api.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PayCRM API",
    "DESCRIPTION": "Merchants, onboarding, settlements and risk for payment businesses.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["core.api.IsVerified"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per choice set shared by several fields.
    "ENUM_NAME_OVERRIDES": {
        "CurrencyEnum": "core.money.CURRENCY_CHOICES",
        "CountryEnum": "django_countries.countries",
        "MerchantStatusEnum": "merchants.models.Merchant.Status",
        "PartnerStatusEnum": "merchants.models.Partner.Status",
        "PartnerKindEnum": "merchants.models.Partner.Kind",
        "DocumentStatusEnum": "merchants.models.Document.Status",
        "ContractStatusEnum": "merchants.models.Contract.Status",
        "ActivityKindEnum": "merchants.models.Activity.Kind",
        "DecisionKindEnum": "onboarding.models.StepDecision.Kind",
        "CheckKindEnum": "onboarding.models.ComplianceCheck.Kind",
        "CheckStatusEnum": "onboarding.models.ComplianceCheck.Status",
        "ApplicationStatusEnum": "onboarding.models.Application.Status",
        "WorkflowStatusEnum": "onboarding.models.WorkflowDefinition.Status",
    },
}

# ---------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# ---------------------------------------------------------------------------
# Project
# ---------------------------------------------------------------------------
# Username of the account that history rows name for scheduled and system work.
SYSTEM_USERNAME = "system"
# Audit trail (PCI DSS 10.5.1 asks for at least 12 months): entries older than
# this may be archived to a file by `manage.py archive_audit_trail`, never earlier.
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=7 * 365 + 2)
# Ed25519 key (base64 of the 32-byte seed) that signs evidence bundles. Without
# one, a key derived from SECRET_KEY signs them: fine for a demo, not for
# evidence, since whoever knows SECRET_KEY could forge a bundle.
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default="")
# Earlier keys (comma-separated, same format) that still verify older entries,
# seals and checkpoints after a rotation; new ones use AUDIT_SIGNING_KEY.
AUDIT_PREVIOUS_SIGNING_KEYS = env.str("AUDIT_PREVIOUS_SIGNING_KEYS", default="")
DOCUMENT_MAX_BYTES = env.int("DOCUMENT_MAX_BYTES", default=10 * 1024 * 1024)
# The import confirmation carries the (compressed, signed) CSV back in a form field.
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Settlement runs paying out more than this (run currency) need two approvers;
# "*" covers currencies without their own figure. SETTLEMENT_DUAL_APPROVAL_ABOVE
# in the environment sets the "*" figure.
SETTLEMENT_DUAL_APPROVAL_ABOVE = {
    "*": env.str("SETTLEMENT_DUAL_APPROVAL_ABOVE", default="100000"),
    "JPY": "15000000",
    "KRW": "130000000",
    "IDR": "1500000000",
    "VND": "2500000000",
}
SETTLEMENT_WEBHOOK_TOLERANCE_SECONDS = env.int("SETTLEMENT_WEBHOOK_TOLERANCE_SECONDS", default=300)

"""Celery application.

Without ``REDIS_URL`` tasks run eagerly in-process (the embedded default); with it,
they go through Redis to ``celery -A config worker`` and the schedule below runs
under ``celery -A config beat``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("paycrm")
# Every CELERY_* setting in config/settings.py configures this app.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

"""The Celery app. Tasks live in each app's tasks.py and are found by autodiscovery."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tally")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _worker_gc_tune(**kwargs) -> None:
    """Each worker process, once forked and set up: see config.memory (a batch of events allocates
    hundreds of thousands of objects; default thresholds made the collector a fifth of the work)."""
    from config.memory import gc_tune

    gc_tune()

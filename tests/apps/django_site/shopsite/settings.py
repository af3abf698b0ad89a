"""Settings of the test site. ``LOGGING`` adds a RerunHandler when ``APP_SINK`` is set
(as a Django user configures logging: the ``LOGGING`` dict, run through dictConfig)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "tests-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = ["django.contrib.contenttypes", "shop"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "shopsite.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True

_handlers = {"console": {"class": "logging.StreamHandler", "formatter": "plain"}}
if os.environ.get("APP_SINK"):
    _handlers["rerun"] = {"class": "rerun_logging.RerunHandler", "sink": os.environ["APP_SINK"],
                          "application_id": "django-shop"}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "[%(process)d] %(levelname)s %(name)s: %(message)s"}},
    "handlers": _handlers,
    "root": {"level": "INFO", "handlers": list(_handlers)},
    "loggers": {"django": {"level": "INFO", "handlers": [], "propagate": True}},
}

"""gunicorn's config file, as its users write one: ``logconfig_dict`` adds a RerunHandler.

``APP_SINK`` (when set) is the handler's sink; without it the app logs only to the
console (as under ``rerun-logging run``, which adds its own handler). ``APP_BIND`` is
the address.
"""

import os

bind = os.environ.get("APP_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("APP_WORKERS", "3"))
worker_class = "sync"
graceful_timeout = 30
timeout = 30

_handlers = {
    "console": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain"},
}
if os.environ.get("APP_SINK"):
    _handlers["rerun"] = {
        "class": "rerun_logging.RerunHandler",
        "sink": os.environ["APP_SINK"],
        "application_id": "gunicorn-shop",
    }

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"}},
    "handlers": _handlers,
    "root": {"level": "INFO", "handlers": list(_handlers)},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
    },
}

# The control socket (gunicorn 25.1+) beside the app, not one shared by every gunicorn of the user.
control_socket = os.path.abspath("gunicorn.ctl")

"""Writes the ``--log-config`` JSON that uvicorn's users write: uvicorn's own console
formatters, plus a ``RerunHandler`` on every logger when a sink is given.

    python log_config.py save:uvicorn.rrd > log_config.json
"""

import json
import sys


def log_config(sink: str | None) -> dict:  # type: ignore[type-arg]
    handlers = {
        "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"},
    }
    extra = []
    if sink:
        handlers["rerun"] = {"class": "rerun_logging.RerunHandler", "sink": sink,
                             "application_id": "uvicorn-shop"}
        extra = ["rerun"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s [%(process)d] %(message)s"},
            "access": {"()": "uvicorn.logging.AccessFormatter",
                       "fmt": "%(levelprefix)s %(client_addr)s - \"%(request_line)s\" %(status_code)s"},
        },
        "handlers": handlers,
        "loggers": {
            "uvicorn": {"handlers": ["default", *extra], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access", *extra], "level": "INFO", "propagate": False},
            "shop": {"handlers": ["default", *extra], "level": "INFO", "propagate": False},
        },
    }


if __name__ == "__main__":
    json.dump(log_config(sys.argv[1] if len(sys.argv) > 1 else None), sys.stdout, indent=2)

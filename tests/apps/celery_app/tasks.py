"""A Celery app on the filesystem broker (no server to run): each task logs K records.

    APP_BROKER_DIR=/tmp/broker APP_SINK=save:celery.rrd \
        celery -A tasks worker --pool prefork -c 2 --max-tasks-per-child 2
    APP_BROKER_DIR=/tmp/broker python -c "import tasks; tasks.work.delay(1)"

Logging is set up the way Celery's docs say to own it: a ``setup_logging`` receiver
(Celery then leaves the root logger alone) that runs a ``dictConfig`` with a
``RerunHandler`` when ``APP_SINK`` is set. Prefork children are forked by billiard and
leave through ``os._exit`` (``--max-tasks-per-child``).
"""

import logging
import logging.config
import os

from celery import Celery, signals

STEPS = 3
"""Records each task logs."""

BROKER_DIR = os.environ.get("APP_BROKER_DIR", "broker")
app = Celery("tasks", broker="filesystem://")
app.conf.broker_transport_options = {
    "data_folder_in": os.path.join(BROKER_DIR, "out"),
    "data_folder_out": os.path.join(BROKER_DIR, "out"),
    "processed_folder": os.path.join(BROKER_DIR, "processed"),
    "store_processed": True,
    "polling_interval": 0.1,
}
app.conf.broker_connection_retry_on_startup = True
app.conf.worker_prefetch_multiplier = 1
for folder in ("out", "processed"):
    os.makedirs(os.path.join(BROKER_DIR, folder), exist_ok=True)

log = logging.getLogger("shop.tasks")


@signals.setup_logging.connect
def configure_logging(**_: object) -> None:
    handlers = {"console": {"class": "logging.StreamHandler", "formatter": "plain"}}
    if os.environ.get("APP_SINK"):
        handlers["rerun"] = {"class": "rerun_logging.RerunHandler", "sink": os.environ["APP_SINK"],
                             "application_id": "celery-shop"}
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "[%(process)d %(processName)s] %(levelname)s %(name)s: %(message)s"}},
        "handlers": handlers,
        "root": {"level": "INFO", "handlers": list(handlers)},
    })


@app.task
def work(item: int) -> int:
    for step in range(STEPS):
        log.info("item %d step %d", item, step, extra={"item_step": [item, step]})
    return item

"""structlog through its standard-library bridge: dictConfig with a RerunHandler (when
``--sink`` is given), structlog's processors ending in ``render_to_log_kwargs`` so the
event dict's keys become the record's extras.

    python structlog_app.py --sink save:structlog.rrd --records 20
"""

import argparse
import logging
import logging.config

import structlog


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sink", default="")
    parser.add_argument("--records", type=int, default=20)
    args = parser.parse_args()
    handlers = {"console": {"class": "logging.StreamHandler"}}
    if args.sink:
        handlers["rerun"] = {"class": "rerun_logging.RerunHandler", "sink": args.sink,
                             "application_id": "structlog-app"}
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,
                               "handlers": handlers,
                               "root": {"level": "INFO", "handlers": list(handlers)}})
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    log = structlog.get_logger("shop.orders").bind(service="orders")
    for req in range(args.records):
        log.info("order handled", req=req, total=req * 1.5)
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("order failed", req=-1)
    log.info("done")


if __name__ == "__main__":
    main()

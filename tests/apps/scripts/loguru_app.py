"""loguru with a RerunHandler as one of its sinks (``logger.add(handler)``), as loguru
documents for any ``logging.Handler``; or, with ``--propagate``, loguru's documented
propagation into standard logging (what ``rerun-logging run`` then records).

    python loguru_app.py --sink save:loguru.rrd --records 20

Logs RECORDS records bound with ``req``, one exception with its traceback, and one
record from a forked child.
"""

import argparse
import logging
import os
import sys

from loguru import logger


class PropagateHandler(logging.Handler):
    """loguru's docs: "Entirely compatible with standard logging" → propagate."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sink", default="")
    parser.add_argument("--propagate", action="store_true")
    parser.add_argument("--records", type=int, default=20)
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, format="{level} {message}")
    if args.sink:
        import rerun_logging

        logger.add(rerun_logging.RerunHandler(args.sink, application_id="loguru-app"))
    if args.propagate:
        logging.basicConfig(level=logging.INFO, handlers=[logging.NullHandler()])
        logger.add(PropagateHandler(), format="{message}")
    for req in range(args.records):
        logger.bind(req=req).info("request {}", req)
    try:
        1 / 0
    except ZeroDivisionError:
        logger.bind(req=-1).exception("division failed")
    pid = os.fork()
    if pid == 0:
        logger.bind(req=args.records).info("from the forked child")
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    logger.info("done")


if __name__ == "__main__":
    main()

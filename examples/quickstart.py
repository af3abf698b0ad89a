"""Quickstart: the standard flags pick the mode; three calls wire them up.

    python examples/quickstart.py                 # spawn the viewer (or use the running one)
    python examples/quickstart.py --save run.rlg  # then: rerun-logging run.rlg
    python examples/quickstart.py --serve         # this script serves the web viewer
    python examples/quickstart.py --connect --url 127.0.0.1:7270
    python examples/quickstart.py --stdout | rerun-logging -
    python examples/quickstart.py --headless      # buffer only
"""

import argparse
import logging

import rerun_logging

log = logging.getLogger("quickstart")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="how many work items to log")
    rerun_logging.script_add_args(parser)
    args = parser.parse_args()
    rerun_logging.script_setup(args, "quickstart")

    log.info("starting %d work items", args.count)
    for item in range(args.count):
        log.debug("item %d", item, extra={"item": item})
        if item % 7 == 6:
            log.warning("item %d is slow", item, extra={"item": item, "latency_ms": 120 + item})
    log.info("done")

    rerun_logging.script_teardown(args)


if __name__ == "__main__":
    main()

"""Multiprocess workers: one recording, every worker's records, each with its pid.

    python examples/workers.py                      # saves workers.rlg (+ workers.<pid>.rlg)
    rerun-logging workers.rlg workers.*.rlg         # one recording in the viewer
    python examples/workers.py --sink spawn         # or stream it all to the viewer live
    python examples/workers.py --start-method spawn

Each worker configures logging the way the parent does (a pool initializer), which
``spawn`` workers need: they start as fresh interpreters. Workers join the parent's
recording through the environment (RERUN_LOGGING_RECORDING_ID). With ``save``,
a worker writes beside the parent's file, not over it; with ``serve`` it streams
into the parent's page.
"""

import argparse
import logging
import multiprocessing
import os

import rerun_logging

log = logging.getLogger("workers")


def configure(sink: str) -> None:
    """The same logging set-up in the parent and in every worker."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(rerun_logging.RerunHandler(sink, application_id="workers"))


def work(item: int) -> int:
    log.info("worker %d squares %d", os.getpid(), item, extra={"item": item})
    return item * item


def main() -> None:
    parser = argparse.ArgumentParser(description="multiprocess workers logging into one recording")
    parser.add_argument("--sink", default="save:workers.rlg")
    parser.add_argument("--start-method", choices=multiprocessing.get_all_start_methods(), default="spawn")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--items", type=int, default=12)
    args = parser.parse_args()

    configure(args.sink)
    log.info("starting %d workers (%s)", args.workers, args.start_method)
    context = multiprocessing.get_context(args.start_method)
    initializer = None if args.start_method == "fork" else configure
    initargs = () if args.start_method == "fork" else (args.sink,)
    with context.Pool(args.workers, initializer=initializer, initargs=initargs) as pool:
        total = sum(pool.map(work, range(args.items)))
        pool.close()
        pool.join()
    log.info("sum of squares %d", total, extra={"total": total})


if __name__ == "__main__":
    main()

"""A multiprocessing pool whose workers log: every item's record must be recorded.

    python pool_app.py --method fork|spawn|forkserver --exit join|with --sink save:pool.rrd

``--exit join`` leaves the pool with ``close()`` and ``join()`` (the workers exit on
their own, through ``os._exit``); ``--exit with`` only leaves the ``with`` block
(``terminate()``: the workers get SIGTERM). ``--sink ''`` configures no RerunHandler
(for ``rerun-logging run``). Prints the worker pids that did work, as JSON.
"""

import argparse
import json
import logging
import multiprocessing
import os

log = logging.getLogger("pool")


def configure(sink: str) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if sink:
        import rerun_logging

        root.addHandler(rerun_logging.RerunHandler(sink, application_id="pool"))


def work(item: int) -> int:
    log.info("item %d", item, extra={"item": item})
    return os.getpid()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default="fork")
    parser.add_argument("--exit", choices=["join", "with"], default="join")
    parser.add_argument("--sink", default="save:pool.rrd")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--items", type=int, default=30)
    args = parser.parse_args()
    configure(args.sink)
    log.info("starting %d workers (%s, %s)", args.workers, args.method, args.exit)
    context = multiprocessing.get_context(args.method)
    init = None if args.method == "fork" else configure
    initargs = () if args.method == "fork" else (args.sink,)
    if args.exit == "join":
        pool = context.Pool(args.workers, initializer=init, initargs=initargs)
        pids = pool.map(work, range(args.items), chunksize=1)
        pool.close()
        pool.join()
    else:
        with context.Pool(args.workers, initializer=init, initargs=initargs) as pool:
            pids = pool.map(work, range(args.items), chunksize=1)
    log.info("done")
    print(json.dumps(sorted(set(pids))), flush=True)


if __name__ == "__main__":
    main()

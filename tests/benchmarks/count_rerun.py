"""Instructions per record of ``bench_rerun.py``'s scenarios, counted with callgrind.

Run on demand (needs valgrind and ``rerun-logging[rerun]``); pytest does not collect it::

    python tests/benchmarks/count_rerun.py [--n 10000] [--jobs 2]

CPU time on a shared VM moves by a third from one minute to the next (other tenants,
the clock); the instructions a record costs do not. Each scenario runs twice under
``valgrind --tool=callgrind``, with ``N`` records and with none (start-up, imports and the
warm-up alike), and the difference over ``N`` is its whole cost per record: the caller,
the flusher and Rerun's own threads. Caches and the second core are not counted, so this
is a floor under what CPU time shows, not a replacement for ``bench_rerun.py``.

Valgrind runs the program about 50 times slower, so the app logs slower than the flusher
wakes (every 50 ms), which would make batches of a few dozen records where the app at
full speed fills them (4,096). The handlers here get a 30 s ``flush_interval``: batches
fill, as they do outside valgrind. ``rerun:connect`` needs a server in another process
and is left to ``bench_rerun.py``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCENARIOS = [
    "NullHandler (floor)",
    "RerunHandler save",
    "RerunHandler rerun:save (extras kept)",
    "RerunHandler rerun (the app's recording, saved)",
    "rr.LoggingHandler (rerun-sdk; text and level only)",
]


def child(name: str, n: int) -> None:
    """One scenario, inside valgrind: the warm-up, then ``n`` records."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_rerun
    import rerun  # noqa: F401  (the same imports for every count)

    import rerun_logging.rerun_sdk.mapping  # noqa: F401
    from rerun_logging import handler

    init = handler.RerunHandler.__init__

    def filling(self: handler.RerunHandler, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("flush_interval", 30.0)
        init(self, *args, **kwargs)  # type: ignore[arg-type]

    handler.RerunHandler.__init__ = filling  # type: ignore[method-assign]
    folder = Path(tempfile.mkdtemp())
    run = bench_rerun.SCENARIOS[name]
    run(200, folder / "warm.rrd")
    if n:
        run(n, folder / "run.rrd")
    shutil.rmtree(folder, ignore_errors=True)


def count(name: str, n: int) -> int:
    """The instructions of one whole run of ``name`` with ``n`` records, every thread."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, os.path.abspath(__file__), "--child", name, "--n", str(n)],
        capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0", "RERUN_ANALYTICS": "0"},
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{name} with {n} records failed under valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not on PATH")
    runs = [(name, n) for name in SCENARIOS for n in (0, args.n)]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        totals = dict(zip(runs, pool.map(lambda run: count(*run), runs)))
    per_record = {name: (totals[name, args.n] - totals[name, 0]) / args.n for name in SCENARIOS}
    floor = per_record[SCENARIOS[0]]
    print(f"callgrind, N={args.n}, instructions a record (the run with N minus the run with none)\n")
    print("| scenario | instructions/rec | x floor |")
    print("|---|---:|---:|")
    for name, value in per_record.items():
        print(f"| {name} | {value:,.0f} | {value / floor:.3f} |")


if __name__ == "__main__":
    main()

"""The ``rerun`` sink's cost per record against the floor, ``rr.LoggingHandler`` and ``save``.

Run on demand (needs ``rerun-logging[rerun]``); pytest does not collect it::

    python tests/benchmarks/bench_rerun.py [--n 20000] [--repeat 3]

Every scenario logs ``N`` times, from one thread::

    logger.info("request %d done", i, extra={"user": "u", "n": i})

and ends with everything on disk: ``close()`` of our handlers; ``flush()`` and
``disconnect()`` of the recording ``rr.LoggingHandler`` logs into. Scenarios:

- ``NullHandler`` (the floor: the cost of ``logging`` itself);
- ``RerunHandler("save:...")``, our own file, for reference;
- ``RerunHandler("rerun:save:...")``: a real Rerun .rrd, ``TextLog`` rows sent in columns
  with every field and extra as components (``rr.send_columns`` per entity per frame);
- ``RerunHandler("rerun")``: into the app's own recording (global, saved to a file);
- ``RerunHandler("rerun:connect:URL")``: to a headless Rerun server in another process
  (``rerun --port P --save FILE``, started once for the whole run; its own CPU is not
  counted, as a viewer's is not); the file column is empty for it;
- rerun-sdk's own ``rr.LoggingHandler`` into a recording saved to a file: one ``rr.log``
  per record, on the caller's thread, text and level only (no extras, no fields).

Each run's cost is the process's CPU time over the loop and the delivery
(``time.process_time``: the caller, our flusher and Rerun's own threads), and its wall
time, each measured run just after a short one of the same scenario (a run pays for what
the run before it left, such as memory handed back to the system, by up to 0.1x: in an app
the handler runs after itself). Runs are interleaved, a round of every scenario at a time;
the table shows each
scenario's best run and its ratio to the best floor run, the median over the rounds of its
ratio to the floor run of the same round (this VM's speed drifts by half within minutes:
a ratio taken within a round is the steadier one), and the file's bytes per record.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator


def log_loop(logger: logging.Logger, n: int) -> None:
    for i in range(n):
        logger.info("request %d done", i, extra={"user": "u", "n": i})


def fresh_logger() -> logging.Logger:
    logger = logging.getLogger(f"bench.rerun.{time.monotonic_ns()}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def run_floor(n: int, path: Path) -> None:
    logger = fresh_logger()
    logger.addHandler(logging.NullHandler())
    log_loop(logger, n)


def ours(spec: str) -> Callable[[int, Path], None]:
    def run(n: int, path: Path) -> None:
        from rerun_logging import RerunHandler

        logger = fresh_logger()
        handler = RerunHandler(spec.format(path=path), flush_timeout=60)
        logger.addHandler(handler)
        log_loop(logger, n)
        handler.close()
        if handler.stats.sinks[0].written != n:
            raise SystemExit(f"{spec} wrote {handler.stats.sinks[0].written} of {n}")

    return run


def rerun_logging_handler(n: int, path: Path) -> None:
    import rerun as rr

    recording = rr.RecordingStream("bench", recording_id=f"bench-{time.monotonic_ns()}")
    recording.save(str(path))
    logger = fresh_logger()
    handler = rr.LoggingHandler("logs")
    logger.addHandler(handler)
    with recording:  # the thread's recording, which rr.log (so the handler) logs into
        log_loop(logger, n)
        recording.flush()
    recording.disconnect()


def into_the_apps_recording(n: int, path: Path) -> None:
    """``rerun``: the app made a recording (saved to a file) and made it the global one."""
    import rerun as rr

    recording = rr.RecordingStream("bench", recording_id=f"bench-{time.monotonic_ns()}")
    recording.save(str(path))
    rr.set_global_data_recording(recording)
    try:
        ours("rerun")(n, path)
        recording.flush()
    finally:
        rr.set_global_data_recording(None)  # type: ignore[arg-type]
        recording.disconnect()


SERVER_URL = ""
"""The URL of the Rerun server (``rerun --save``, another process) that ``connect`` streams to."""


@contextlib.contextmanager
def rerun_server(folder: str) -> Iterator[str]:
    """A headless Rerun server on a free loopback port, saving what it receives."""
    rerun = shutil.which("rerun", path=os.path.dirname(sys.executable)) or shutil.which("rerun")
    if rerun is None:
        raise SystemExit("the rerun CLI (rerun-sdk) is not on PATH")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [rerun, "--port", str(port), "--bind", "127.0.0.1", "--save", str(Path(folder) / "server.rrd")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RERUN_ANALYTICS": "0"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the Rerun server did not listen within 20 s") from None
                time.sleep(0.05)
        yield f"rerun+http://127.0.0.1:{port}/proxy"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def to_the_server(n: int, path: Path) -> None:
    ours(f"rerun:connect:{SERVER_URL}")(n, path)


SCENARIOS: dict[str, Callable[[int, Path], None]] = {
    "NullHandler (floor)": run_floor,
    "RerunHandler save": ours("save:{path}"),
    "RerunHandler rerun:save (extras kept)": ours("rerun:save:{path}"),
    "RerunHandler rerun (the app's recording, saved)": into_the_apps_recording,
    "RerunHandler rerun:connect (a Rerun server in another process)": to_the_server,
    "rr.LoggingHandler (rerun-sdk; text and level only)": rerun_logging_handler,
}


def measure(name: str, n: int, folder: str) -> tuple[float, float, float]:
    """(CPU µs per record, wall µs per record, file bytes per record)."""
    SCENARIOS[name](max(n // 10, 1), Path(folder) / f"{len(os.listdir(folder))}-before.rrd")
    path = Path(folder) / f"{len(os.listdir(folder))}.rrd"
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    SCENARIOS[name](n, path)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    size = path.stat().st_size if path.exists() else 0
    return cpu / n * 1e6, wall / n * 1e6, size / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import rerun as rr

    print(f"Python {platform.python_version()}, rerun-sdk {rr.__version__}, {platform.platform()}, "
          f"{os.cpu_count()} CPUs, N={args.n}, best of {args.repeat}\n")
    global SERVER_URL
    rounds: list[dict[str, tuple[float, float, float]]] = []
    with tempfile.TemporaryDirectory() as folder, rerun_server(folder) as SERVER_URL:
        for name in SCENARIOS:  # warm-up: imports, first files
            SCENARIOS[name](200, Path(folder) / f"warm-{len(os.listdir(folder))}.rrd")
        for _ in range(args.repeat):
            rounds.append({name: measure(name, args.n, folder) for name in SCENARIOS})
    floor = "NullHandler (floor)"
    best = {name: min((r[name] for r in rounds), key=lambda m: m[0]) for name in SCENARIOS}
    floor_cpu, floor_wall, _ = best[floor]
    print("| scenario | CPU µs/rec | x floor | x floor, median of rounds | wall µs/rec | x floor | file bytes/rec |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (cpu, wall, size) in best.items():
        paired = statistics.median(r[name][0] / r[floor][0] for r in rounds)
        print(f"| {name} | {cpu:.2f} | {cpu / floor_cpu:.2f} | {paired:.2f} | {wall:.2f} | "
              f"{wall / floor_wall:.2f} | {size:.1f} |")

if __name__ == "__main__":
    main()

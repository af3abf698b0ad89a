"""The per-record cost of ``RerunHandler`` against the standard library's handlers.

Run on demand; pytest does not collect it (no ``test_`` names)::

    python tests/benchmarks/bench_handler.py [--n 100000] [--repeat 5] [--dir DIR]

Every scenario logs ``N`` times, from one thread::

    logger.info("request %d done", i, extra={"user": "u", "n": i})

through a logger with ``propagate=False``, level INFO and exactly one handler. With
``--record access`` each record is instead an access-log line with a request id::

    logger.info("%s %s -> %d in %.1f ms", "GET", path, 200, ms,
                extra={"request_id": request_id, "user": "alice"})

(paths and ids made before the loop): about 40 bytes of arguments and 50 of extras,
where a batch's columns pass the 64 KiB a field may hold though no record comes near
it. The targets below are the benchmark record's; for this one the table alone says
what it costs. Two
times are taken per run with ``time.perf_counter``:

- *caller*: the logging loop alone, what the application's thread pays;
- *whole*: the loop plus what it takes to get every record to its destination
  (``close()`` of the handler, or ``QueueListener.stop()`` then ``close()``).
  ``RerunHandler.close()`` also fsyncs the file; ``FileHandler.close()`` does not.

Two CPU times are shown beside them: the logging thread's own (``time.thread_time``
over the loop) and the whole process's (``time.process_time``). Under the GIL a
background thread's Python work runs in the gaps of the logging loop, so the loop's
wall time includes it; the thread's CPU time does not.

Each scenario is warmed up once, then runs ``--repeat`` times, interleaved with the
other scenarios so that drift on the machine hits them all alike; each run gets a
fresh handler and a fresh file in its own temporary directory, and ``gc.collect()``
runs before it. The table shows the best run of each scenario and its ratio to the
best ``NullHandler`` run (the floor: the cost of ``logging`` itself).
"""

from __future__ import annotations

import argparse
import gc
import logging
import logging.handlers
import os
import platform
import queue
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from pythonjsonlogger.json import JsonFormatter

import rerun_logging
from rerun_logging import RerunHandler
from rerun_logging.format import Record, StreamDecoder

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
LOGGER_NAME = "bench.handler"


@dataclass
class Opened:
    """A handler ready for one run: what ``finish`` does after the loop, what to check."""

    handler: logging.Handler
    finish: Callable[[], None] = lambda: None
    path: Path | None = None
    check: Callable[[int], str | None] = lambda n: None


@dataclass(frozen=True)
class Scenario:
    """One configuration: ``build`` makes it afresh in a directory for each run."""

    key: str
    label: str
    build: Callable[[Path], Opened]
    has_whole: bool = True


@dataclass
class Samples:
    """The runs of one scenario, in seconds, and its file size in bytes."""

    caller: list[float] = field(default_factory=list)
    whole: list[float] = field(default_factory=list)
    caller_cpu: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    file_bytes: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# --- the scenarios ------------------------------------------------------------------


def open_null(directory: Path) -> Opened:
    """The floor: ``logging`` itself, a handler that does nothing."""
    return Opened(logging.NullHandler())


def open_file_text(directory: Path) -> Opened:
    """Plain text lines written on the caller's thread."""
    path = directory / "app.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    return Opened(handler, handler.close, path)


def open_file_json(directory: Path) -> Opened:
    """JSON lines (python-json-logger) written on the caller's thread."""
    path = directory / "app.jsonl"
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter(TEXT_FORMAT))
    return Opened(handler, handler.close, path)


def open_queue_json(directory: Path) -> Opened:
    """The stdlib's background-thread recipe: JSON lines written by a ``QueueListener``."""
    path = directory / "app.jsonl"
    target = logging.FileHandler(path)
    target.setFormatter(JsonFormatter(TEXT_FORMAT))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, target)
    listener.start()

    def finish() -> None:
        listener.stop()
        target.close()

    return Opened(logging.handlers.QueueHandler(records), finish, path)


def _rerun_check(handler: RerunHandler) -> Callable[[int], str | None]:
    """After close: every record reached the sink, none was dropped."""
    def check(n: int) -> str | None:
        stats = handler.stats
        written = stats.sinks[0].written if stats.sinks else 0
        if stats.dropped or written != n:
            return f"wrote {written} of {n} records, dropped {stats.dropped_by_reason}"
        return None

    return check


def open_rerun_memory(directory: Path) -> Opened:
    """No sink: frames are kept in the in-memory buffer."""
    handler = RerunHandler(application_id="bench")
    return Opened(handler, handler.close, None, _rerun_check(handler))


def open_rerun_save(directory: Path) -> Opened:
    """A recording file; ``close()`` writes the rest and fsyncs."""
    path = directory / "app.rrd"
    handler = RerunHandler(f"save:{path}", application_id="bench")
    return Opened(handler, handler.close, path, _rerun_check(handler))


def open_rerun_serve(directory: Path) -> Opened:
    """The app serves the web viewer; started before the loop (its start-up is set-up).

    Whole: until ``close()`` handed every frame to the in-app viewer's store.
    """
    handler = RerunHandler("serve:127.0.0.1:0", application_id="bench", open_browser=False)
    handler.start()
    return Opened(handler, handler.close, None, _rerun_check(handler))


def open_rerun_off(directory: Path) -> Opened:
    """The ``off`` spec: the handler refuses every record."""
    handler = RerunHandler("off", application_id="bench")
    return Opened(handler, handler.close)


SCENARIOS = (
    Scenario("null", "`NullHandler` (floor)", open_null, has_whole=False),
    Scenario("file-text", "`FileHandler` text", open_file_text),
    Scenario("file-json", "`FileHandler` + `JsonFormatter`", open_file_json),
    Scenario(
        "queue-json", "`QueueHandler` → `QueueListener` → `FileHandler` + JSON", open_queue_json
    ),
    Scenario("rerun-memory", "`RerunHandler()` in memory", open_rerun_memory),
    Scenario("rerun-save", '`RerunHandler("save:PATH")`', open_rerun_save),
    Scenario("rerun-serve", '`RerunHandler("serve:127.0.0.1:0")`', open_rerun_serve),
    Scenario("rerun-off", '`RerunHandler("off")`', open_rerun_off),
)


# --- measuring ----------------------------------------------------------------------


def bench_logger(handler: logging.Handler) -> logging.Logger:
    """The benchmark's logger with ``handler`` as its only handler."""
    logger = logging.getLogger(LOGGER_NAME)
    for old in logger.handlers[:]:
        logger.removeHandler(old)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger


@dataclass(frozen=True)
class Run:
    """One run: wall and CPU seconds, the file's size, and a problem found after it."""

    caller: float
    whole: float
    caller_cpu: float
    cpu: float
    size: int | None
    problem: str | None


LogLoop = Callable[[Callable[..., None]], None]
"""What a run times: ``n`` calls of the logger's ``info`` it is given."""


def benchmark_records(n: int) -> LogLoop:
    """The benchmark record, ``n`` times."""
    def log(info: Callable[..., None]) -> None:
        for i in range(n):
            info("request %d done", i, extra={"user": "u", "n": i})

    return log


def access_records(n: int) -> LogLoop:
    """An access-log record with a request id, ``n`` times; its paths and ids are made
    here, before any run, so that no run times their making."""
    paths = [f"/api/v1/users/{i}" for i in range(n)]
    ids = [str(uuid.UUID(int=i * 7919)) for i in range(n)]

    def log(info: Callable[..., None]) -> None:
        for i in range(n):
            info("%s %s -> %d in %.1f ms", "GET", paths[i], 200, i % 977 / 8,
                 extra={"request_id": ids[i], "user": "alice"})

    return log


RECORDS: dict[str, Callable[[int], LogLoop]] = {"benchmark": benchmark_records, "access": access_records}
"""What ``--record`` chooses: the maker of the loop each run times."""


def run_once(scenario: Scenario, log: LogLoop, n: int, workdir: Path) -> Run:
    """One run of ``scenario`` in a fresh directory under ``workdir``."""
    directory = Path(tempfile.mkdtemp(prefix=f"{scenario.key}-", dir=workdir))
    try:
        opened = scenario.build(directory)
        logger = bench_logger(opened.handler)
        gc.collect()
        cpu_start = time.process_time()
        thread_start = time.thread_time()
        start = time.perf_counter()
        log(logger.info)
        looped = time.perf_counter()
        caller_cpu = time.thread_time() - thread_start
        opened.finish()
        finished = time.perf_counter()
        cpu = time.process_time() - cpu_start
        logger.removeHandler(opened.handler)
        size = opened.path.stat().st_size if opened.path else None
        return Run(looped - start, finished - start, caller_cpu, cpu, size, opened.check(n))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def verify_recording(n: int, workdir: Path) -> str | None:
    """Log ``n`` records to a file and read them back; a problem, or None."""
    directory = Path(tempfile.mkdtemp(prefix="verify-", dir=workdir))
    try:
        opened = open_rerun_save(directory)
        logger = bench_logger(opened.handler)
        benchmark_records(n)(logger.info)
        opened.finish()
        logger.removeHandler(opened.handler)
        assert opened.path is not None
        decoder = StreamDecoder(str(opened.path))
        decoder.feed(opened.path.read_bytes())
        records = [m for m in decoder.messages() if isinstance(m, Record)]
        decoder.close()
        last = records[-1] if records else None
        expected_last = {"user": "u", "n": n - 1}
        if len(records) != n or not decoder.ended or last is None or last.extras != expected_last:
            return f"read back {len(records)} of {n} records (ended: {decoder.ended})"
        return None
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def measure(
    log: LogLoop, n: int, repeat: int, workdir: Path, keys: set[str] | None
) -> dict[str, Samples]:
    """Warm up each scenario once, then ``repeat`` interleaved rounds of every scenario."""
    scenarios = [s for s in SCENARIOS if keys is None or s.key in keys or s.key == "null"]
    for scenario in scenarios:
        run_once(scenario, log, n, workdir)
        print(f"  warmed up {scenario.key}", file=sys.stderr)
    results = {s.key: Samples() for s in scenarios}
    for round_ in range(repeat):
        for scenario in scenarios:
            run = run_once(scenario, log, n, workdir)
            samples = results[scenario.key]
            samples.caller.append(run.caller)
            samples.whole.append(run.whole)
            samples.caller_cpu.append(run.caller_cpu)
            samples.cpu.append(run.cpu)
            if run.size is not None:
                samples.file_bytes.append(run.size)
            if run.problem:
                samples.problems.append(run.problem)
        print(f"  round {round_ + 1}/{repeat} done", file=sys.stderr)
    return results


# --- reporting ----------------------------------------------------------------------


def us_per_record(seconds: float, n: int) -> float:
    """Microseconds per record."""
    return seconds / n * 1e6


def machine_info(workdir: Path) -> str:
    """Python, platform, CPUs: what the numbers depend on."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    lines = [
        f"- Python {platform.python_version()} ({platform.python_implementation()}, "
        f"{sys.version.split(' ', 1)[1].strip()})",
        f"- {platform.platform()}, machine {platform.machine()}, processor "
        f"{_cpu_model() or platform.processor() or 'unknown'}",
        f"- CPUs: {os.cpu_count()} (usable: {usable})",
        f"- rerun-logging {rerun_logging.__version__}, "
        f"GIL switch interval {sys.getswitchinterval() * 1e3:g} ms",
        f"- files in {workdir}",
    ]
    return "\n".join(lines)


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def report(
    results: dict[str, Samples], n: int, repeat: int, with_targets: bool = True
) -> tuple[str, bool]:
    """The results and the targets as Markdown tables, and whether every target is met.

    The targets are the benchmark record's: ``with_targets=False`` (another record) leaves
    them out and says so."""
    floor = min(results["null"].caller)
    rows = [
        "| Handler | caller µs/rec | caller ×floor | whole µs/rec | whole ×floor | bytes/rec "
        "| caller-thread CPU µs/rec | all-threads CPU µs/rec | caller spread |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by_key = {s.key: s for s in SCENARIOS}
    for key, samples in results.items():
        scenario = by_key[key]
        caller = min(samples.caller)
        whole = min(samples.whole)
        spread = (max(samples.caller) - caller) / caller * 100
        size = f"{min(samples.file_bytes) / n:.1f}" if samples.file_bytes else "–"
        whole_cells = (
            f"{us_per_record(whole, n):.2f} | {whole / floor:.2f}"
            if scenario.has_whole
            else "– | –"
        )
        rows.append(
            f"| {scenario.label} | {us_per_record(caller, n):.2f} | {caller / floor:.2f} | "
            f"{whole_cells} | {size} | {us_per_record(min(samples.caller_cpu), n):.2f} | "
            f"{us_per_record(min(samples.cpu), n):.2f} | +{spread:.0f}% |"
        )
    lines = [
        f"N = {n} records per run, best of {repeat} runs.",
        "",
        *rows,
        "",
        "caller: wall time of the logging loop; whole: loop + close (or listener stop) until "
        "everything is written. caller-thread CPU: `time.thread_time()` of the logging thread "
        "over the loop (without the background thread's work, which the GIL serialises into "
        "the loop's wall time); all-threads CPU: `time.process_time()` over the whole run; "
        "caller spread: slowest run over the best.",
    ]
    problems = [
        f"- {key}: {len(s.problems)} run(s), e.g. {s.problems[0]}"
        for key, s in results.items()
        if s.problems
    ]
    if problems:
        lines += ["", "Problems:", *problems]

    if not with_targets:
        return "\n".join([*lines, "", "(The targets are the benchmark record's.)"]), not problems
    targets = list(target_rows(results, n, floor))
    all_met = all(met for _, _, met in targets)
    lines += [
        "",
        "| Target | Measured | Met |",
        "|---|---:|:---:|",
        *[f"| {name} | {value} | {'yes' if met else '**no**'} |" for name, value, met in targets],
    ]
    return "\n".join(lines), all_met and not problems


def target_rows(
    results: dict[str, Samples], n: int, floor: float
) -> Iterator[tuple[str, str, bool]]:
    """(target, measured, met) for the targets that the measured scenarios cover."""
    save = results.get("rerun-save")
    if save is not None:
        whole = min(save.whole)
        yield "save whole ≤ 1.5× floor", f"{whole / floor:.2f}×", whole / floor <= 1.5
        caller = min(save.caller)
        yield "save caller side ≤ 1.3× floor", f"{caller / floor:.2f}×", caller / floor <= 1.3
    memory = results.get("rerun-memory")
    if memory is not None:
        caller = min(memory.caller)
        yield "memory caller side ≤ 1.3× floor", f"{caller / floor:.2f}×", caller / floor <= 1.3
    text = results.get("file-text")
    if save is not None and text is not None:
        ours, theirs = min(save.whole), min(text.whole)
        yield (
            "save whole < `FileHandler` text whole",
            f"{us_per_record(ours, n):.2f} vs {us_per_record(theirs, n):.2f} µs",
            ours < theirs,
        )
    if save is not None and save.file_bytes:
        per_record = min(save.file_bytes) / n
        yield "save ≤ 20 bytes/record", f"{per_record:.1f}", per_record <= 20
    off = results.get("rerun-off")
    if off is not None:
        caller = min(off.caller)
        yield "`off` ≤ 1.1× floor", f"{caller / floor:.2f}×", caller / floor <= 1.1


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, measure, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=100_000, help="records per run")
    parser.add_argument("--repeat", type=int, default=5, help="measured runs per scenario")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the files go (default: system temp)"
    )
    parser.add_argument(
        "--only", default=None,
        help="comma-separated scenario keys (the floor always runs): "
        + ", ".join(s.key for s in SCENARIOS),
    )
    parser.add_argument(
        "--record", choices=sorted(RECORDS), default="benchmark",
        help="the record logged: the benchmark record (the targets' own) or an access-log line",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeat < 1:
        parser.error("--n and --repeat must be positive")
    keys = set(args.only.split(",")) if args.only else None
    if keys and keys - {s.key for s in SCENARIOS}:
        unknown = sorted(keys - {s.key for s in SCENARIOS})
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    if os.environ.pop(rerun_logging.ENV_VAR, None) is not None:
        print(f"note: ignoring {rerun_logging.ENV_VAR} for the benchmark", file=sys.stderr)

    workdir = Path(tempfile.mkdtemp(prefix="bench-handler-", dir=args.dir))
    try:
        print(f"Machine:\n{machine_info(workdir.parent)}\n")
        benchmark = args.record == "benchmark"
        if benchmark and (keys is None or "rerun-save" in keys):
            problem = verify_recording(min(args.n, 10_000), workdir)
            print(f"Recording read back: {problem or 'ok'}\n")
        results = measure(RECORDS[args.record](args.n), args.n, args.repeat, workdir, keys)
        table, all_met = report(results, args.n, args.repeat, with_targets=benchmark)
        print(table)
        medians = ", ".join(
            f"{key} {us_per_record(statistics.median(s.caller), args.n):.2f}"
            for key, s in results.items()
        )
        print(f"\nMedian caller µs/rec: {medians}")
        if benchmark:
            print(f"\nAll targets met: {'yes' if all_met else 'no'}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

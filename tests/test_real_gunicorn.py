"""gunicorn ``-w 3`` with a Flask app, its logging set up by ``logconfig_dict``
(tests/apps/gunicorn_app), into save, connect and spawn, and under ``rerun-logging run``.

Each round starts gunicorn, waits until all three workers booted, sends N requests
(each logs one record with its id), stops it with SIGTERM as a supervisor does, and
the rounds are read back at the end: every request's record exactly once, in the
stream of the worker that served it; each worker's boot and exit records; the
master's start and last record; a clean END for every process; and the stop well
under ``graceful_timeout`` (30 s). Rounds reuse one file (save), one viewer
(connect), or the viewer the first round spawned (spawn).

CI runs 2 rounds of 30 requests; ``REAL_APPS_FULL=1`` runs 5 rounds of 300.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import free_port
from .realapps import (
    APPS, RUN, App, SaveTarget, Stream, Target, app_env, assert_clean_ends, assert_own_records,
    by_recording, count, extras_of, get, group_pids, make_target, notable,
)

pytest.importorskip("gunicorn")
pytest.importorskip("flask")

WORKERS = 3
STOP_BOUND = 10.0
"""Seconds a stop may take (graceful_timeout is 30 s): generous, not a benchmark."""
BOOT_TIMEOUT = 20.0


@dataclass
class Round:
    master: int
    workers: set[int]
    first: int
    requests: int
    stop_seconds: float
    output: str


def gunicorn_round(app_dir: Path, sink: str | None, first: int, requests: int,
                   run_sink: str | None = None) -> Round:
    """One start, ``requests`` requests, one SIGTERM stop."""
    port = free_port()
    env = app_env(APP_BIND=f"127.0.0.1:{port}")
    if sink:
        env["APP_SINK"] = sink
    argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"]
    if run_sink:
        argv = [*RUN, "--sink", run_sink, "--", "python", "-m", "gunicorn", "-c", "gunicorn.conf.py",
                "app:app"]
    app = App(argv, cwd=app_dir, env=env)
    try:
        listening = app.err.first("Listening at:", timeout=BOOT_TIMEOUT)
        master = int(re.search(r"\((\d+)\)\s*$", listening).group(1))  # type: ignore[union-attr]
        try:
            booted = app.err.wait_for("Booting worker with pid:", count=WORKERS, timeout=BOOT_TIMEOUT)
        except BaseException:
            seen = {int(l.rsplit(":", 1)[1]) for l in app.err.matching("Booting worker with pid:")}
            stuck = [p for p in group_pids(app.pid) if p not in seen | {master, app.pid}]
            pytest.fail(f"not every worker booted within {BOOT_TIMEOUT}s (booted: {sorted(seen)}, "
                        f"not: {stuck})\n" + app.dump_hung(stuck))
        workers = {int(line.rsplit(":", 1)[1]) for line in booted}
        served = set()
        for req in range(first, first + requests):
            status, _ = get(f"http://127.0.0.1:{port}/?req={req}")
            assert status == 200
            served.add(req)
        app.err.wait_for("handled request", count=requests)  # the console saw them all
        seconds = app.stop()
        assert app.process.returncode == 0, app.output()
        return Round(master, workers, first, requests, seconds, app.output())
    finally:
        app.kill()


def check_round(streams: list[Stream], run: Round, viewer: str = "") -> None:
    """Exact counts for one round's streams (found by the master's pid)."""
    (master,) = [s for s in streams if s.pid == run.master]
    mine = by_recording(streams)[master.info.recording_id]
    context = (f"round from request {run.first}: {mine}\n{notable(run.output)}\n{run.output[-3000:]}"
               f"\nviewer:\n{viewer}")
    assert {s.pid for s in mine} == {run.master} | run.workers, context
    assert len(mine) == 1 + WORKERS, context  # one stream per process
    assert run.stop_seconds < STOP_BOUND, f"stop took {run.stop_seconds:.1f}s\n{context}"
    assert_own_records(mine)
    assert extras_of(mine, "req") == list(range(run.first, run.first + run.requests)), context
    for worker in (s for s in mine if s.pid != run.master):
        messages = worker.messages()
        assert messages.count(f"Booting worker with pid: {worker.pid}") == 1, (worker, messages[:5])
        assert messages.count(f"Worker exiting (pid: {worker.pid})") == 1, (worker, messages[-5:])
    access = [r for s in mine for r in s.records if r.logger == "gunicorn.access"]
    assert len(access) == run.requests, context
    starts = [m for s in mine for m in s.messages() if m.startswith("Starting gunicorn")]
    assert len(starts) == 1, context  # the master's records are never copied into a worker's
    assert master.messages()[-1] == "Shutting down: Master", master.messages()[-5:]
    assert_clean_ends(mine, context)


def copy_app(tmp_path: Path) -> Path:
    app_dir = tmp_path / "app"
    shutil.copytree(APPS / "gunicorn_app", app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    return app_dir


@pytest.mark.slow
@pytest.mark.parametrize("sink", ["save", "connect", "spawn"])
def test_gunicorn_workers_boot_record_everything_and_stop_fast(tmp_path: Path, sink: str) -> None:
    app_dir = copy_app(tmp_path)
    rounds, requests = count(2, 5), count(30, 300)
    target: Target = make_target(sink, tmp_path)
    runs: list[Round] = []
    try:
        for i in range(rounds):
            runs.append(gunicorn_round(app_dir, target.spec, i * requests, requests))
        streams = target.streams()
        viewer_log = target.log_text()
    finally:
        target.close()
    assert len(by_recording(streams)) == rounds, streams  # save: the file kept every round
    if sink == "spawn":  # the first round started the viewer, the next ones used it
        assert viewer_log.count("listening on") == 1, viewer_log
    for run in runs:
        check_round(streams, run, viewer_log)


@pytest.mark.slow
def test_gunicorn_under_rerun_logging_run(tmp_path: Path) -> None:
    """The same app with no RerunHandler in its config, instrumented by the runner."""
    app_dir = copy_app(tmp_path)
    target = SaveTarget(tmp_path / "rec", "run.rrd")
    requests = count(30, 300)
    runs = [gunicorn_round(app_dir, None, i * requests, requests, run_sink=target.spec)
            for i in range(count(1, 3))]
    streams = target.streams()
    for run in runs:
        check_round(streams, run)

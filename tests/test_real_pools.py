"""multiprocessing pools under fork, spawn and forkserver, left with ``close()``/``join()``
and with only the ``with`` block (``terminate()``: SIGTERM to the workers), configured
in code and under ``rerun-logging run``; and the fork stress: many fresh interpreters
forking right after their first record, for every sink.

Fixtures: tests/apps/scripts/pool_app.py and fork_once.py. CI counts: 30 items per
pool, 20 interpreters per sink; ``REAL_APPS_FULL=1`` (or ``FORK_STRESS_N``) for more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import pytest

from .realapps import (
    APPS, RUN, ConnectTarget, SaveTarget, SpawnTarget, Stream, Target, app_env, assert_clean_ends,
    assert_own_records, by_recording, count, extras_of, file_streams, streams_of_bytes,
)

POOL_APP = str(APPS / "scripts" / "pool_app.py")
FORK_ONCE = str(APPS / "scripts" / "fork_once.py")
METHODS = ["fork", "spawn", "forkserver"]


# --- pools -----------------------------------------------------------------------------------


def run_pool(tmp_path: Path, method: str, how: str, items: int, sink: str,
             run_sink: str | None = None) -> tuple[int, list[int], str]:
    argv = [POOL_APP, "--method", method, "--exit", how, "--items", str(items), "--sink", sink]
    argv = [*RUN, "--sink", run_sink, "--", "python", *argv] if run_sink else [sys.executable, *argv]
    done = subprocess.run(argv, cwd=tmp_path, env=app_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.returncode, json.loads(done.stdout.splitlines()[-1]), done.stderr


def check_pool(streams: list[Stream], workers: list[int], items: int, stderr: str) -> None:
    (rec,) = by_recording(streams).values()  # one recording: the parent's and its workers'
    context = f"{rec}\nworkers that did work: {workers}\nstderr: {stderr}"
    parents = [s for s in rec if "done" in s.messages()]
    assert len(parents) == 1, context
    assert parents[0].messages()[-1] == "done", context
    assert set(workers) <= {s.pid for s in rec}, context  # every worker that worked has a stream
    assert_own_records(rec)
    assert extras_of(rec, "item") == list(range(items)), context
    assert_clean_ends(rec, context)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["join", "with"])
@pytest.mark.parametrize("method", METHODS)
def test_pool_workers_record_every_item(tmp_path: Path, method: str, how: str) -> None:
    items = count(30, 3000)
    target = SaveTarget(tmp_path, "pool.rrd")
    _, workers, stderr = run_pool(tmp_path, method, how, items, target.spec)
    check_pool(target.streams(), workers, items, stderr)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["join", "with"])
@pytest.mark.parametrize("method", METHODS)
def test_pool_workers_under_rerun_logging_run(tmp_path: Path, method: str, how: str) -> None:
    items = count(30, 3000)
    target = SaveTarget(tmp_path, "run.rrd")
    _, workers, stderr = run_pool(tmp_path, method, how, items, "", run_sink=target.spec)
    check_pool(target.streams(), workers, items, stderr)


# --- the fork stress ---------------------------------------------------------------------------

FORK_N = int(os.environ.get("FORK_STRESS_N") or count(20, 200))
CHILD_TIMEOUT = 10.0
SINKS = ["save", "stdout", "connect-dead", "connect-live", "spawn", "serve"]


def run_all(job: Callable[[int], dict[str, Any]]) -> list[dict[str, Any]]:
    """``job(i)`` for the FORK_N interpreters, 3 at a time; the first failure stops the rest."""
    pool = ThreadPoolExecutor(3)
    try:
        futures = [pool.submit(job, i) for i in range(FORK_N)]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(cancel_futures=True)


def fork_once(folder: Path, sink: str, flush_timeout: float) -> dict[str, Any]:
    """One fresh interpreter: log, fork, log in the child; what it reported."""
    folder.mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, FORK_ONCE, sink, str(CHILD_TIMEOUT), str(flush_timeout)], cwd=folder,
        env=app_env(),
        capture_output=True, timeout=CHILD_TIMEOUT + 30,
    )
    stderr = done.stderr.decode(errors="replace")
    lines = [l for l in stderr.splitlines() if l.startswith("FORK-RESULT ")]
    assert done.returncode == 0 and lines, f"{sink}: status {done.returncode}\n{stderr}"
    result = json.loads(lines[-1].split(" ", 1)[1])
    assert not result["hung"], (
        f"{sink}: the child {result['child']} did not exit within {CHILD_TIMEOUT}s; "
        f"its stacks (faulthandler):\n{stderr}")
    assert result["status"] == 0, f"{sink}: child status {result['status']}\n{stderr}"
    result.update(stderr=stderr, stdout=done.stdout, folder=folder)
    return result


def two_records(streams: list[Stream], result: dict[str, Any]) -> None:
    """The parent's and the child's record, each once, in its own stream, each ended."""
    mine = [s for s in streams if s.pid in (result["parent"], result["child"])]
    context = f"{mine}\n{result['stderr']}"
    assert sorted(s.pid for s in mine) == sorted([result["parent"], result["child"]]), context
    for stream in mine:
        who = "parent" if stream.pid == result["parent"] else "child"
        assert [r.extras.get("who") for r in stream.records] == [who], context
    assert len({s.info.recording_id for s in mine}) == 1, context
    assert_clean_ends(mine, context)


@pytest.mark.slow
@pytest.mark.parametrize("sink", SINKS)
def test_fork_right_after_the_first_record(tmp_path: Path, sink: str) -> None:
    target: Target | None = None
    spec = {"save": "save:fork.rrd", "stdout": "stdout", "serve": "serve:127.0.0.1:0",
            "connect-dead": "connect:127.0.0.1:1"}.get(sink, "")
    flush_timeout = 0.5 if sink == "connect-dead" else 5.0
    try:
        if sink == "connect-live":
            target = ConnectTarget(tmp_path)
            spec = target.spec
        elif sink == "spawn":
            target = SpawnTarget()
            spec = target.spec
        results = run_all(lambda i: fork_once(tmp_path / f"run{i}", spec, flush_timeout))
        streams = target.streams() if target is not None else []
    finally:
        if target is not None:
            target.close()
    for result in results:
        if sink == "save":
            two_records(file_streams(result["folder"] / "fork.rrd"), result)
        elif sink == "stdout":
            # a forked child never writes into its parent's stdout stream: its record is
            # counted as dropped, and it says so
            (stream,) = streams_of_bytes(result["stdout"], "stdout")
            assert [r.extras.get("who") for r in stream.records] == ["parent"], result["stderr"]
            said = [l for l in result["stderr"].splitlines()
                    if l.startswith("rerun-logging") and str(result["child"]) in l]
            assert len(said) == 1, result["stderr"]
            assert_clean_ends([stream], result["stderr"])
        elif sink == "connect-dead":
            # nothing can be recorded; both processes give up within flush_timeout, saying so
            assert result["stderr"].count("1 record not delivered") == 2, result["stderr"]
        elif sink == "serve":
            served = result["served"]
            assert served == {str(result["parent"]): ["parent before the fork"],
                              str(result["child"]): ["child after the fork"]}, result["stderr"]
        else:
            two_records(streams, result)
    if target is not None:
        assert len(streams) == 2 * FORK_N, (streams, target.log_text())

"""Celery prefork (billiard) with ``--max-tasks-per-child`` on the filesystem broker
(tests/apps/celery_app), logging set up by a ``setup_logging`` receiver, and under
``rerun-logging run``.

Children are forked by billiard, run two tasks each, and leave through ``os._exit``
(no ``atexit``, but code still runs before it): every task's records must still be
there, in the stream of the child that ran it, and every such child's stream must end
cleanly; once they have left (and every record is in the files), the worker gets
SIGTERM (warm shutdown) and must stop well within 10 s. A child that ran fewer tasks
is killed by that shutdown with SIGTERM at SIG_DFL (Celery resets it in its
children), where no code runs: its records must be there, its END cannot be.

CI runs 8 tasks of 3 records; ``REAL_APPS_FULL=1`` runs 200.
"""

from __future__ import annotations

import re
from collections import Counter
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .realapps import (
    APPS, RUN, App, SaveTarget, Stream, app_env, assert_clean_ends, assert_own_records, by_recording, count,
    notable, wait_until,
)

pytest.importorskip("celery")

STEPS = 3
STOP_BOUND = 10.0


def run_celery(tmp_path: Path, tasks: int, target: SaveTarget, run: bool = False) -> tuple[str, set[int]]:
    """Queue ``tasks``, run the worker until they are done, stop it; its output and the
    children that left on their own after their two tasks."""
    sink, run_sink = (None, target.spec) if run else (target.spec, None)
    app_dir = tmp_path / "app"
    shutil.copytree(APPS / "celery_app", app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    env = app_env(APP_BROKER_DIR=str(tmp_path / "broker"))
    queued = subprocess.run(
        [sys.executable, "-c", f"import tasks\nfor i in range({tasks}): tasks.work.delay(i)"],
        cwd=app_dir, env=env, capture_output=True, text=True, timeout=60)
    assert queued.returncode == 0, queued.stderr
    if sink:
        env["APP_SINK"] = sink
    argv = ["python", "-m", "celery", "-A", "tasks", "worker", "--pool", "prefork",
            "--concurrency", "2", "--max-tasks-per-child", "2", "--without-heartbeat",
            "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
    argv = [*RUN, "--sink", run_sink, "--", *argv] if run_sink else [sys.executable, *argv[1:]]
    app = App(argv, cwd=app_dir, env=env)
    try:
        app.err.wait_for("succeeded in", count=tasks, timeout=60 + tasks)  # children leave after 1 s
        # A child that ran its two tasks leaves on its own (billiard's os._exit path, where
        # code still runs): wait for those; a child that ran fewer is still there, idle,
        # and the warm shutdown will kill it with SIGTERM (which Celery resets to SIG_DFL
        # in its children: no code runs then), so first wait until the files hold every
        # task's records.
        ran = Counter(int(p) for p in re.findall(
            r"\[(\d+) ForkPoolWorker-\d+\] INFO celery.app.trace: Task .* succeeded in", app.output()))
        done = {pid for pid, n in ran.items() if n == 2}
        wait_until(lambda: not any(_alive(p) for p in done), f"children {sorted(done)} to exit", 30)
        wanted = [(i, k) for i in range(tasks) for k in range(STEPS)]
        try:
            wait_until(lambda: steps_of(target.streams()) == wanted, "every record saved", 30)
        except BaseException:
            missing = sorted(set(wanted) - set(steps_of(target.streams())))
            pytest.fail(f"records never saved: {missing} (children that ran 2 tasks: {sorted(done)}, "
                        f"tasks per child: {dict(ran)}); {target.streams()}\n{notable(app.output())}")
        seconds = app.stop(signal.SIGTERM)
        assert seconds < STOP_BOUND, f"{seconds:.1f}s\n{app.output()}"
        assert app.process.returncode == 0, app.output()
        output = app.output()
    finally:
        app.kill()
    return output, done


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def steps_of(streams: list[Stream]) -> list[tuple[int, int]]:
    return sorted(tuple(r.extras["item_step"]) for s in streams for r in s.records  # type: ignore[misc]
                  if "item_step" in r.extras)


def check(streams: list[Stream], tasks: int, output: str, done: set[int]) -> None:
    main_pids = {int(p) for p in re.findall(r"\[(\d+) MainProcess\]", output)}
    (main,) = [s for s in streams if s.pid in main_pids]
    mine = by_recording(streams)[main.info.recording_id]
    children = [s for s in mine if s is not main]
    context = f"{mine}\n{notable(output)}\n{output[-4000:]}"
    assert_own_records(mine)
    assert steps_of(mine) == [(i, k) for i in range(tasks) for k in range(STEPS)], context
    assert all("item_step" not in r.extras for r in main.records), context  # tasks ran in children
    succeeded = [r for s in children for r in s.records if "succeeded in" in r.message]
    assert len(succeeded) == tasks, context
    received = [r for r in main.records if r.message.endswith("received")]
    assert len(received) == tasks, context
    assert len(children) >= tasks // 2, context  # two tasks per child, then a new child
    assert_clean_ends([s for s in mine if s is main or s.pid in done], context)


@pytest.mark.slow
def test_celery_prefork_children_keep_every_record(tmp_path: Path) -> None:
    tasks = count(8, 200)
    target = SaveTarget(tmp_path / "rec", "celery.rrd")
    output, done = run_celery(tmp_path, tasks, target)
    check(target.streams(), tasks, output, done)


@pytest.mark.slow
def test_celery_under_rerun_logging_run(tmp_path: Path) -> None:
    tasks = count(8, 200)
    target = SaveTarget(tmp_path / "rec", "run.rrd")
    output, done = run_celery(tmp_path, tasks, target, run=True)
    check(target.streams(), tasks, output, done)

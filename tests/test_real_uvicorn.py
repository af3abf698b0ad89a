"""uvicorn with ``--log-config`` (tests/apps/uvicorn_app), one process and ``--workers 2``,
stopped by SIGTERM (a supervisor, to the main process) and by Ctrl-C (SIGINT to the
whole process group, as a terminal sends it), and under ``rerun-logging run``.

uvicorn stops by re-raising the signal it caught once the server has shut down, so a
handler that relies on ``atexit`` loses the last records. What must be recorded: every
request's record and access record exactly once, and each server process's stream
down to ``Finished server process [PID]`` (the parent's to ``Stopping parent
process``), each ended cleanly.

CI sends 20 requests per scenario; ``REAL_APPS_FULL=1`` sends 500.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
from pathlib import Path

import pytest

from .conftest import free_port
from .realapps import (
    APPS, RUN, App, SaveTarget, Stream, app_env, assert_clean_ends, assert_own_records,
    by_recording, count, extras_of, get, notable,
)

pytest.importorskip("uvicorn")
sys.path.insert(0, str(APPS / "uvicorn_app"))
from log_config import log_config  # noqa: E402

sys.path.pop(0)

STOP_BOUND = 10.0


def serve_and_stop(tmp_path: Path, workers: int, stop: str, requests: int,
                   sink: str | None, run_sink: str | None = None) -> tuple[int, str]:
    """Start uvicorn, send ``requests``, stop it; the main process's pid and the output."""
    app_dir = tmp_path / "app"
    shutil.copytree(APPS / "uvicorn_app", app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    (app_dir / "log_config.json").write_text(json.dumps(log_config(sink)))
    port = free_port()
    argv = ["python", "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port),
            "--log-config", "log_config.json"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    argv = [*RUN, "--sink", run_sink, "--", *argv] if run_sink else [sys.executable, *argv[1:]]
    app = App(argv, cwd=app_dir, env=app_env())
    try:
        # one server binds after its startup; with workers the parent binds before it spawns them
        app.err.wait_for("Application startup complete.", count=workers)
        if workers == 1:
            app.err.first("Uvicorn running on")
        for req in range(requests):
            assert get(f"http://127.0.0.1:{port}/?req={req}")[0] == 200
        app.out.wait_for('"GET /?req=', count=requests)
        if stop == "sigterm":
            seconds = app.stop(signal.SIGTERM)
        else:
            seconds = app.stop(signal.SIGINT, group=True)
        assert seconds < STOP_BOUND, f"{seconds:.1f}s\n{app.output()}"
        # uvicorn re-raises the signal it caught once it has shut down: a single server
        # dies of SIGTERM (as it would without any handler), and the handler must have
        # flushed before that.
        assert app.process.returncode in (0, -signal.SIGTERM), app.output()
        main = int(app.err.first("Started parent process" if workers > 1 else "Started server process")
                   .rsplit("[", 1)[1].rstrip("]"))
        return main, app.output()
    finally:
        app.kill()


def check(streams: list[Stream], main: int, workers: int, requests: int, output: str) -> None:
    (top,) = [s for s in streams if s.pid == main]
    mine = by_recording(streams)[top.info.recording_id]
    context = f"{mine}\n{notable(output)}\n{output[-4000:]}"
    assert len(mine) == (1 if workers == 1 else 1 + workers), context
    assert_own_records(mine)
    assert extras_of(mine, "req") == list(range(requests)), context
    access = [r for s in mine for r in s.records if r.logger == "uvicorn.access"]
    assert len(access) == requests, context
    servers = [s for s in mine if s.pid != main or workers == 1]
    for server in servers:
        messages = server.messages()
        assert messages.count("shop starting") == messages.count("shop stopped") == 1, (server, messages)
        assert messages[-1] == f"Finished server process [{server.pid}]", (server, messages[-4:])
    if workers > 1:
        assert top.messages()[-1] == f"Stopping parent process [{main}]", top.messages()[-4:]
    assert_clean_ends(mine, context)


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["sigterm", "ctrl-c"])
@pytest.mark.parametrize("workers", [1, 2])
def test_uvicorn_log_config_keeps_the_last_records(tmp_path: Path, workers: int, stop: str) -> None:
    target = SaveTarget(tmp_path / "rec", "uvicorn.rrd")
    requests = count(20, 500)
    main, output = serve_and_stop(tmp_path, workers, stop, requests, target.spec)
    check(target.streams(), main, workers, requests, output)


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["sigterm", "ctrl-c"])
def test_uvicorn_workers_under_rerun_logging_run(tmp_path: Path, stop: str) -> None:
    target = SaveTarget(tmp_path / "rec", "run.rrd")
    requests = count(20, 500)
    main, output = serve_and_stop(tmp_path, 2, stop, requests, None, run_sink=target.spec)
    check(target.streams(), main, 2, requests, output)

"""Django 5.2 (tests/apps/django_site), its ``LOGGING`` setting naming a RerunHandler:
``manage.py runserver`` with its autoreloader (two processes), stopped by Ctrl-C, and
``manage.py test``, where an extra holding a QuerySet must be turned into text on the
thread that logged it (the in-memory test database exists only there); and both
under ``rerun-logging run``.

CI sends 10 requests; ``REAL_APPS_FULL=1`` sends 300.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import free_port
from .realapps import (
    APPS, RUN, App, SaveTarget, Stream, app_env, assert_clean_ends, assert_own_records,
    by_recording, count, extras_of, get, notable,
)

pytest.importorskip("django")

STOP_BOUND = 10.0


def copy_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    shutil.copytree(APPS / "django_site", site, ignore=shutil.ignore_patterns("__pycache__"))
    return site


def runserver(tmp_path: Path, requests: int, sink: str | None, run_sink: str | None = None) -> str:
    site = copy_site(tmp_path)
    port = free_port()
    env = app_env(**({"APP_SINK": sink} if sink else {}))
    argv = ["python", "manage.py", "runserver", f"127.0.0.1:{port}"]
    argv = [*RUN, "--sink", run_sink, "--", *argv] if run_sink else [sys.executable, *argv[1:]]
    app = App(argv, cwd=site, env=env)
    try:
        app.out.first("Starting development server at", timeout=30)
        for req in range(requests):
            status, body = get(f"http://127.0.0.1:{port}/items/{req}")
            assert (status, body) == (200, f"item {req}\n".encode())
        app.err.wait_for('"GET /items/', count=requests)
        seconds = app.stop(signal.SIGINT, group=True)  # Ctrl-C in the terminal
        assert seconds < STOP_BOUND, f"{seconds:.1f}s\n{app.output()}"
        return app.output()
    finally:
        app.kill()


def check_runserver(streams: list[Stream], requests: int, output: str) -> None:
    (server,) = [s for s in streams if extras_of([s], "req")]
    mine = by_recording(streams)[server.info.recording_id]
    context = f"{mine}\n{notable(output)}\n{output[-3000:]}"
    # the autoreloader's process and the server's; a process may hold several streams, one
    # per handler: Django's setup runs the LOGGING dictConfig again in the server process
    assert len({s.pid for s in mine}) <= 2, context
    assert_own_records(mine)
    assert extras_of(mine, "req") == list(range(requests)), context
    access = [r for r in server.records if r.logger == "django.server"]
    assert len(access) == requests, context
    assert_clean_ends(mine, context)


@pytest.mark.slow
def test_django_runserver_with_autoreloader(tmp_path: Path) -> None:
    target = SaveTarget(tmp_path / "rec", "django.rrd")
    requests = count(10, 300)
    output = runserver(tmp_path, requests, target.spec)
    check_runserver(target.streams(), requests, output)


@pytest.mark.slow
def test_django_runserver_under_rerun_logging_run(tmp_path: Path) -> None:
    target = SaveTarget(tmp_path / "rec", "run.rrd")
    requests = count(10, 300)
    output = runserver(tmp_path, requests, None, run_sink=target.spec)
    check_runserver(target.streams(), requests, output)


def manage_test(tmp_path: Path, sink: str | None, run_sink: str | None = None) -> str:
    site = copy_site(tmp_path)
    argv = ["python", "manage.py", "test", "shop", "-v", "2"]
    argv = [*RUN, "--sink", run_sink, "--", *argv] if run_sink else [sys.executable, *argv[1:]]
    done = subprocess.run(argv, cwd=site, env=app_env(**({"APP_SINK": sink} if sink else {})),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Ran 2 tests" in done.stderr and "\nOK\n" in done.stderr, done.stderr
    return done.stderr


def check_manage_test(streams: list[Stream], output: str) -> None:
    (stream,) = streams
    context = f"{streams}\n{output}"
    records = stream.records
    assert [r.extras["n"] for r in records if r.logger == "shop.tests" and "n" in r.extras] == \
        list(range(5)), context
    (inventory,) = [r for r in records if r.message == "inventory"]
    assert inventory.extras["items"] == "<QuerySet [<Item: apple>, <Item: pear>]>", inventory.extras
    assert [r.extras["req"] for r in records if "req" in r.extras] == [7], context
    assert_clean_ends(streams, context)


@pytest.mark.slow
def test_django_manage_py_test_records_extras_as_they_were(tmp_path: Path) -> None:
    target = SaveTarget(tmp_path / "rec", "tests.rrd")
    output = manage_test(tmp_path, target.spec)
    check_manage_test(target.streams(), output)


@pytest.mark.slow
def test_django_manage_py_test_under_rerun_logging_run(tmp_path: Path) -> None:
    target = SaveTarget(tmp_path / "rec", "run.rrd")
    output = manage_test(tmp_path, None, run_sink=target.spec)
    check_manage_test(target.streams(), output)

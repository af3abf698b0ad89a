"""loguru 0.7 (a RerunHandler added as a loguru sink; loguru propagating into standard
logging under ``rerun-logging run``) and structlog (its standard-library bridge), from
tests/apps/scripts/: every record once, the bound values as extras, and a traceback
exactly once (loguru has already put it in the message and says so with ``exc_text``).

CI logs 20 records per run; ``REAL_APPS_FULL=1`` logs 2000.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .realapps import APPS, RUN, SaveTarget, Stream, app_env, assert_clean_ends, count

LOGURU_APP = str(APPS / "scripts" / "loguru_app.py")
STRUCTLOG_APP = str(APPS / "scripts" / "structlog_app.py")
TRACEBACK_LINE = "ZeroDivisionError: division by zero"


def run_script(tmp_path: Path, argv: list[str], run_sink: str | None = None) -> str:
    argv = [*RUN, "--sink", run_sink, "--", "python", *argv] if run_sink else [sys.executable, *argv]
    done = subprocess.run(argv, cwd=tmp_path, env=app_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr


def traceback_count(record: object) -> int:
    text = record.message + (record.exception.traceback if record.exception else "")  # type: ignore[attr-defined]
    return text.count(TRACEBACK_LINE)


def check_loguru(streams: list[Stream], records: int, output: str) -> None:
    context = f"{streams}\n{output[-2000:]}"
    assert len(streams) == 2, context  # the script and its forked child
    parent, child = sorted(streams, key=lambda s: s.records[0].time_ns if s.records else 0)
    reqs = [r.extras["extra"]["req"] for r in parent.records if r.extras.get("extra", {}).get("req", -1) >= 0]
    assert reqs == list(range(records)), context
    assert [r.message.rsplit(" - ", 1)[-1] for r in parent.records][:records] == \
        [f"request {i}" for i in range(records)], context
    (failed,) = [r for r in parent.records if "division failed" in r.message]
    assert failed.level_name == "ERROR"
    assert traceback_count(failed) == 1, (failed.message, failed.exception)
    assert parent.records[-1].message.endswith("done"), context
    assert [r.extras["extra"]["req"] for r in child.records] == [records], context
    assert_clean_ends(streams, context)


@pytest.mark.slow
def test_loguru_with_a_rerun_handler_sink(tmp_path: Path) -> None:
    records = count(20, 2000)
    target = SaveTarget(tmp_path / "rec", "loguru.rrd")
    output = run_script(tmp_path, [LOGURU_APP, "--sink", target.spec, "--records", str(records)])
    check_loguru(target.streams(), records, output)


@pytest.mark.slow
def test_loguru_propagating_under_rerun_logging_run(tmp_path: Path) -> None:
    records = count(20, 2000)
    target = SaveTarget(tmp_path / "rec", "run.rrd")
    output = run_script(tmp_path, [LOGURU_APP, "--propagate", "--records", str(records)],
                        run_sink=target.spec)
    check_loguru(target.streams(), records, output)


def check_structlog(streams: list[Stream], records: int, output: str) -> None:
    context = f"{streams}\n{output[-2000:]}"
    (stream,) = streams
    orders = [r for r in stream.records if r.message == "order handled"]
    assert [(r.extras["req"], r.extras["total"], r.extras["service"]) for r in orders] == \
        [(i, i * 1.5, "orders") for i in range(records)], context
    assert all("timestamp" in r.extras for r in orders)
    (failed,) = [r for r in stream.records if r.message == "order failed"]
    assert failed.exception is not None and traceback_count(failed) == 1, failed
    assert stream.records[-1].message == "done"
    assert len(stream.records) == records + 2, context
    assert_clean_ends(streams, context)


@pytest.mark.slow
def test_structlog_through_the_stdlib_bridge(tmp_path: Path) -> None:
    records = count(20, 2000)
    target = SaveTarget(tmp_path / "rec", "structlog.rrd")
    output = run_script(tmp_path, [STRUCTLOG_APP, "--sink", target.spec, "--records", str(records)])
    check_structlog(target.streams(), records, output)


@pytest.mark.slow
def test_structlog_under_rerun_logging_run(tmp_path: Path) -> None:
    records = count(20, 2000)
    target = SaveTarget(tmp_path / "rec", "run.rrd")
    output = run_script(tmp_path, [STRUCTLOG_APP, "--records", str(records)], run_sink=target.spec)
    check_structlog(target.streams(), records, output)

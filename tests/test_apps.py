"""Real applications, unmodified, configured the way their users configure them.

- uvicorn with ``--log-config`` naming ``rerun_logging.RerunHandler`` (examples/uvicorn_app);
- structlog through its standard-library bridge;
- ``logging.getHandlerByName`` (3.12+) finds a handler that dictConfig named.

(python-json-logger agreement is in test_cli.py; fileConfig in test_examples.py;
multiprocessing pools in test_family.py; ``rerun-logging run`` in test_run.py. The
real-applications suite, with exact counts of what was logged against what was
recorded, is in test_real_*.py: gunicorn, uvicorn, Celery, Django, pools and the fork
stress, loguru and structlog; its fixtures are in tests/apps/.)
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rerun_logging import RerunHandler
from rerun_logging.format import Record

from .conftest import ROOT, child_env, free_port, read_messages

TIMEOUT = 30.0


def wait_for_line(stream, text: str, seen: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Read ``stream`` until a line containing ``text`` (EOF fails the test)."""
    for line in stream:
        seen.append(line)
        if text in line:
            return
    pytest.fail(f"no line with {text!r}: {''.join(seen)}")


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_uvicorn_with_a_log_config_records_access_and_app_logs(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    app_dir = tmp_path / "app"
    shutil.copytree(ROOT / "examples" / "uvicorn_app", app_dir)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-config", "log_config.json"],
        cwd=app_dir, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert server.stderr is not None and server.stdout is not None
    seen: list[str] = []
    try:
        wait_for_line(server.stderr, "Uvicorn running on", seen)
        statuses = [get(f"http://127.0.0.1:{port}{path}") for path in ("/items/1", "/items/2", "/nope")]
        assert statuses == [200, 200, 404]
        server.send_signal(signal.SIGINT)
        assert server.wait(TIMEOUT) == 0
        console = server.stdout.read()
    finally:
        if server.poll() is None:
            server.kill()
        server.stdout.close()
        server.stderr.close()
    assert console.count('"GET /items/1 HTTP/1.1" 200') == 1  # uvicorn's own output is kept
    messages = read_messages(app_dir / "uvicorn.rlg")
    assert messages[0].application_id == "uvicorn-shop"
    records = [m for m in messages if isinstance(m, Record)]
    access = [r for r in records if r.logger == "uvicorn.access"]
    assert [r.args[1:] for r in access] == [  # type: ignore[index]
        ("GET", "/items/1", "1.1", 200), ("GET", "/items/2", "1.1", 200), ("GET", "/nope", "1.1", 404)]
    assert all(r.args[0].startswith("127.0.0.1:") for r in access)  # type: ignore[index]
    assert all(r.template == '%s - "%s %s HTTP/%s" %d' for r in access)
    served = [r for r in records if r.logger == "shop.api"]
    assert [(r.level_name, r.extras["status"]) for r in served] == [
        ("INFO", 200), ("INFO", 200), ("WARNING", 404)]
    assert all(isinstance(r.extras["latency_ms"], float) for r in served)
    assert any(r.logger == "uvicorn.error" and "Started server process" in r.message for r in records)


def test_structlog_event_dict_keys_arrive_as_extras(tmp_path: Path, logger: logging.Logger) -> None:
    structlog = pytest.importorskip("structlog")
    path = tmp_path / "structlog.rrd"
    handler = RerunHandler(f"save:{path}")
    logger.addHandler(handler)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    try:
        log = structlog.get_logger(logger.name).bind(request_id="r-42")
        log.info("user logged in", user="ann", attempts=3)
        log.warning("quota low", remaining=0.5)
    finally:
        structlog.reset_defaults()
    handler.close()
    records = [m for m in read_messages(path) if isinstance(m, Record)]
    assert [(r.message, r.level_name) for r in records] == [
        ("user logged in", "INFO"), ("quota low", "WARNING")]
    assert {k: records[0].extras[k] for k in ("request_id", "user", "attempts")} == {
        "request_id": "r-42", "user": "ann", "attempts": 3}
    assert records[1].extras["remaining"] == 0.5 and "timestamp" in records[1].extras


@pytest.mark.skipif(sys.version_info < (3, 12), reason="logging.getHandlerByName is new in 3.12")
def test_get_handler_by_name_finds_the_configured_handler(tmp_path: Path) -> None:
    import logging.config

    logging.config.dictConfig({
        "version": 1,
        "handlers": {"rerun": {"class": "rerun_logging.RerunHandler", "sink": f"save:{tmp_path / 'n.rrd'}"}},
        "root": {"handlers": ["rerun"], "level": "INFO"},
    })
    handler = logging.getHandlerByName("rerun")  # type: ignore[attr-defined]
    try:
        assert isinstance(handler, RerunHandler)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def test_dictconfig_names_the_handler(tmp_path: Path) -> None:
    """What getHandlerByName relies on, checked on every Python: dictConfig sets ``name``."""
    import logging.config

    logging.config.dictConfig({
        "version": 1, "disable_existing_loggers": False,
        "handlers": {"rerun": {"class": "rerun_logging.RerunHandler", "sink": f"save:{tmp_path / 'n.rrd'}"}},
        "root": {"handlers": ["rerun"], "level": "INFO"},
    })
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, RerunHandler)]
    try:
        assert handler.name == "rerun" and logging._handlers["rerun"] is handler  # type: ignore[attr-defined]
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()

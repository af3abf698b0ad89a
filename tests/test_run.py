"""``rerun-logging run -- PROGRAM``: real programs, real subprocesses, real viewers.

Every program runs through ``python -m rerun_logging run`` with the package
importable (``child_env``); every wait has a deadline, and no sleep decides a pass.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from rerun_logging.format import Record, RecordingInfo
from rerun_logging.instrument import CONFIG_ENV_VAR, SITE_DIR
from rerun_logging.viewer.feed import read_message

from .conftest import Lines, ViewerProcess, feed_of, child_env, free_port, read_messages, viewer_pids

TIMEOUT = 10.0
RUN = [sys.executable, "-m", "rerun_logging", "run"]


def run_env(**extra: str) -> dict[str, str]:
    """A clean environment: no run, recording or file inherited from this test process
    (handlers made in it announce theirs), viewers on free web ports, never a browser."""
    env = child_env()
    for name in list(env):
        if name.startswith("RERUN_LOGGING_") and name != "RERUN_LOGGING_WEB_PORT":
            del env[name]
    env["CI"] = "1"
    env.update(extra)
    return env


def run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RUN, *args], cwd=cwd, env=env or run_env(), capture_output=True, text=True,
        timeout=TIMEOUT * 2, input=input,
    )


def plain(args: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The same program without the runner, for comparison."""
    return subprocess.run(args, cwd=cwd, env=run_env(), capture_output=True, text=True,
                          timeout=TIMEOUT * 2)


def records(path: Path) -> list[Record]:
    return [m for m in read_messages(path) if isinstance(m, Record)]


def info(path: Path) -> RecordingInfo:
    return next(m for m in read_messages(path) if isinstance(m, RecordingInfo))


def script(tmp_path: Path, name: str, code: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(code))
    return path


# --- a plain script -----------------------------------------------------------------------

BASIC = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
log = logging.getLogger("shop")
log.info("order %d handled", 42, extra={"latency_ms": 12.5})
log.debug("not at INFO")
log.warning("stock low")
print("on stdout")
sys.exit(3)
"""


def test_script_records_saved_output_and_status_unchanged(tmp_path: Path) -> None:
    app = script(tmp_path, "app.py", BASIC)
    out = tmp_path / "run.rrd"
    done = run(["--sink", f"save:{out}", "--", "app.py"], cwd=tmp_path)
    alone = plain([sys.executable, "app.py"], cwd=tmp_path)
    assert done.returncode == 3 == alone.returncode
    assert done.stdout == alone.stdout == "on stdout\n"
    assert done.stderr == alone.stderr == "INFO shop order 42 handled\nWARNING shop stock low\n"
    got = records(out)
    assert [(r.logger, r.message) for r in got] == [
        ("shop", "order 42 handled"), ("shop", "stock low"),
    ]
    assert got[0].extras == {"latency_ms": 12.5} and got[0].args == (42,)
    assert info(out).application_id == "app"
    assert app.exists()


def test_level_records_below_the_apps_levels_without_changing_what_it_prints(tmp_path: Path) -> None:
    script(tmp_path, "quiet.py", """
        import logging
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:%(message)s"))
        logging.getLogger().addHandler(handler)          # root stays at WARNING
        logging.getLogger("a").debug("debug")
        logging.getLogger("a").info("info")
        logging.getLogger("a").warning("warning")
        logging.getLogger("a.b").error("error")
    """)
    out = tmp_path / "q.rrd"
    done = run(["--sink", f"save:{out}", "--level", "DEBUG", "--app-id", "quiet", "--",
                "python", "quiet.py"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "WARNING:warning\nERROR:error\n"
    assert [r.message for r in records(out)] == ["debug", "info", "warning", "error"]
    assert info(out).application_id == "quiet"


def test_unconfigured_app_keeps_the_last_resort_output(tmp_path: Path) -> None:
    script(tmp_path, "bare.py", """
        import logging
        print(logging.getLogger().handlers, logging.getLogger().hasHandlers())
        print(logging.root.level, logging.getLogger("x").isEnabledFor(logging.INFO))
        logging.getLogger("x").info("info")
        logging.getLogger("x").warning("careful")
    """)
    out = tmp_path / "b.rrd"
    done = run(["--sink", f"save:{out}", "--", "bare.py"], cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout == "[] False\n30 False\n"  # "if not root.handlers: configure()" still works
    assert done.stderr == "careful\n"
    assert [r.message for r in records(out)] == ["info", "careful"]


def test_stdin_passes_through(tmp_path: Path) -> None:
    script(tmp_path, "echo.py", "import sys\nsys.stdout.write(sys.stdin.read().upper())\n")
    done = run(["--sink", "off", "--", "echo.py"], cwd=tmp_path, input="hello\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, "HELLO\n", "")


# --- the app's levels: seen as without the run, recorded at --level -----------------------------


def line_of(path: Path, marker: str) -> int:
    """The number of the one line of ``path`` that holds ``marker``."""
    (number,) = [n for n, text in enumerate(path.read_text().splitlines(), 1) if marker in text]
    return number


def where(record: Record) -> tuple[str, int, str | None]:
    return os.path.basename(record.path), record.line, record.function


def same_as_plain(tmp_path: Path, name: str, out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """Run ``name`` under run and alone: the same status, stdout and stderr."""
    done = run(["--sink", f"save:{out}", *options, "--", name], cwd=tmp_path)
    alone = plain([sys.executable, name], cwd=tmp_path)
    assert done.returncode == alone.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == (alone.stdout, alone.stderr)
    return done


HIGH_ROOT = """
import logging
logging.root.setLevel(logging.ERROR)
log = logging.getLogger("shop.orders")
handler = logging.StreamHandler()
handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
logging.root.addHandler(handler)
print(logging.root.level, logging.root.isEnabledFor(logging.INFO), log.getEffectiveLevel())
print(log.isEnabledFor(logging.INFO), log.isEnabledFor(logging.ERROR), sorted(log._cache.items()))
print(logging.root._cache, len(logging.root.handlers), log.handlers)

def place_order():
    log.info("order %s placed", 7, extra={"user": "ann"})   # INFO LINE

place_order()
log.error("payment failed")                                  # ERROR LINE
try:
    {}["missing"]
except KeyError:
    log.critical("crashed", exc_info=True)
    logging.root.setLevel(logging.CRITICAL)
    log.exception("handled")                                 # EXCEPTION LINE
try:
    log.log("INFO", "not an int level")
except TypeError as error:
    print("TypeError:", error)
quiet = logging.getLogger("quiet")
quiet.propagate = False
quiet.warning("unpropagated")                                # QUIET LINE
logging.basicConfig(level=57)                                # no effect: root has a handler
print(logging.root.level, sorted(log._cache.items()), logging.root._cache)
"""


def test_the_app_sees_its_own_levels_and_its_info_is_recorded(tmp_path: Path) -> None:
    app = script(tmp_path, "high.py", HIGH_ROOT)
    out = tmp_path / "high.rrd"
    done = same_as_plain(tmp_path, "high.py", out)
    assert done.stdout.splitlines() == [
        "40 False 40", "False True [(20, False), (40, True)]", "{20: False} 1 []",
        "TypeError: level must be an integer", "50 [(40, False)] {}",
    ]
    assert done.stderr.splitlines()[:2] == ["ERROR shop.orders payment failed",
                                            "CRITICAL shop.orders crashed"]
    assert "Traceback" in done.stderr and "KeyError" in done.stderr
    for ours_only in ("order 7 placed", "handled", "unpropagated"):  # nor the last resort
        assert ours_only not in done.stderr
    got = {r.message: r for r in records(out)}
    assert list(got) == ["order 7 placed", "payment failed", "crashed", "handled", "unpropagated"]
    placed = got["order 7 placed"]
    assert (placed.level_name, placed.extras, placed.args) == ("INFO", {"user": "ann"}, (7,))
    assert where(placed) == ("high.py", line_of(app, "# INFO LINE"), "place_order")
    assert where(got["payment failed"]) == ("high.py", line_of(app, "# ERROR LINE"), "<module>")
    handled = got["handled"]  # below the app's CRITICAL: ours only, exc_info still set
    assert handled.level_name == "ERROR" and handled.exception is not None
    assert handled.exception.type.endswith("KeyError")
    assert where(handled) == ("high.py", line_of(app, "# EXCEPTION LINE"), "<module>")
    assert where(got["unpropagated"]) == ("high.py", line_of(app, "# QUIET LINE"), "<module>")


CALLERS = """
import logging, warnings
warnings.simplefilter("ignore", DeprecationWarning)
log = logging.getLogger("callers")

def audit(text):
    log.info("audit: %s", text, stacklevel=2)
    log.warning("audit warning: %s", text, stacklevel=2)

def checkout():
    audit("checkout")                                        # STACKLEVEL LINE

checkout()
adapter = logging.LoggerAdapter(log, {"request": "r1"})
adapter.info("adapted info")                                 # ADAPTER INFO LINE
adapter.warning("adapted warning")                           # ADAPTER WARNING LINE
logging.LoggerAdapter(adapter, {}).debug("nested adapter")   # NESTED LINE

def handler_view():
    adapter.info("from a view", stacklevel=1)                # VIEW LINE

handler_view()
logging.info("module level info")                            # MODULE INFO LINE
logging.warning("module level warning")                      # MODULE WARNING LINE
log.warn("deprecated warn")                                  # WARN LINE
log.log(15, "between debug and info")                        # LOG LINE
print(logging.root.handlers[0].level, logging.root.level)
"""


def test_the_callers_file_and_line_are_the_apps(tmp_path: Path) -> None:
    app = script(tmp_path, "callers.py", CALLERS)
    out = tmp_path / "callers.rrd"
    done = same_as_plain(tmp_path, "callers.py", out, "--level", "DEBUG")
    assert done.stdout == "0 30\n"  # logging.info() ran basicConfig, as without the run
    assert done.stderr.splitlines() == [
        "audit warning: checkout", "adapted warning",  # the last resort, before basicConfig
        "WARNING:root:module level warning", "WARNING:callers:deprecated warn",
    ]
    got = {r.message: r for r in records(out)}
    expected = {
        "audit: checkout": ("STACKLEVEL", "checkout"),
        "audit warning: checkout": ("STACKLEVEL", "checkout"),
        "adapted info": ("ADAPTER INFO", "<module>"),
        "adapted warning": ("ADAPTER WARNING", "<module>"),
        "nested adapter": ("NESTED", "<module>"),
        "from a view": ("VIEW", "handler_view"),
        "module level info": ("MODULE INFO", "<module>"),
        "module level warning": ("MODULE WARNING", "<module>"),
        "deprecated warn": ("WARN", "<module>"),
        "between debug and info": ("LOG", "<module>"),
    }
    assert sorted(got) == sorted(expected)
    for message, (marker, function) in expected.items():
        assert where(got[message]) == ("callers.py", line_of(app, f"# {marker} LINE"), function), message
    assert got["adapted info"].extras == {"request": "r1"}
    assert got["between debug and info"].level == 15


def test_disable_and_disabled_loggers_hold_for_the_recording(tmp_path: Path) -> None:
    script(tmp_path, "off.py", """
        import logging, logging.config
        old = logging.getLogger("old")
        logging.config.dictConfig({"version": 1, "root": {"level": "ERROR"}})  # disables "old"
        print(old.disabled)
        old.warning("from a disabled logger")
        logging.disable(logging.INFO)
        log = logging.getLogger("new")
        log.info("disabled info")
        log.warning("warning passes")
        logging.disable(logging.NOTSET)
        log.addFilter(lambda record: "secret" not in record.getMessage())
        log.info("a secret")
        log.info("info again")
        print(logging.root.manager.disable, logging.root.level)
    """)
    out = tmp_path / "off.rrd"
    done = same_as_plain(tmp_path, "off.py", out)
    assert done.stdout == "True\n0 40\n"
    assert [r.message for r in records(out)] == ["warning passes", "info again"]


def test_cpython_logging_tests_pass_under_run(tmp_path: Path) -> None:
    """CPython's own tests of levels and caching (``test.test_logging``) see no run."""
    try:
        import test.test_logging  # noqa: F401
    except ImportError:
        pytest.skip("the test package (test.test_logging) is not installed")
    out = tmp_path / "cpython.rrd"
    done = subprocess.run(
        [*RUN, "--sink", f"save:{out}", "--", "python", "-m", "unittest", "-v",
         "test.test_logging.BasicConfigTest", "test.test_logging.LoggerTest",
         "test.test_logging.ManagerTest", "test.test_logging.LoggerAdapterTest"],
        cwd=tmp_path, env=run_env(), capture_output=True, text=True, timeout=TIMEOUT * 6,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "FAILED" not in done.stderr and done.stderr.rstrip().endswith("OK")
    assert records(out)  # and the run recorded what they logged


# --- the app's own logging configuration -------------------------------------------------------


def test_dictconfig_app_keeps_its_handlers_and_ours(tmp_path: Path) -> None:
    script(tmp_path, "dc.py", """
        import logging, logging.config
        logging.info("before the config")
        logging.config.dictConfig({
            "version": 1,
            "formatters": {"f": {"format": "[%(name)s] %(message)s"}},
            "handlers": {
                "err": {"class": "logging.StreamHandler", "formatter": "f"},
                "file": {"class": "logging.FileHandler", "filename": "app.log", "formatter": "f"},
            },
            "root": {"level": "WARNING", "handlers": ["err", "file"]},
        })
        logging.getLogger("svc").info("info after")
        logging.getLogger("svc").error("error after")
    """)
    out = tmp_path / "dc.rrd"
    done = run(["--sink", f"save:{out}", "--", "dc.py"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.endswith("[svc] error after\n")
    assert "info after" not in done.stderr
    assert (tmp_path / "app.log").read_text() == "[svc] error after\n"
    assert [r.message for r in records(out)] == ["before the config", "info after", "error after"]


def test_fileconfig_app_keeps_its_handlers_and_ours(tmp_path: Path) -> None:
    (tmp_path / "logging.ini").write_text(textwrap.dedent("""
        [loggers]
        keys=root,db
        [handlers]
        keys=err
        [formatters]
        keys=f
        [logger_root]
        level=INFO
        handlers=err
        [logger_db]
        level=DEBUG
        handlers=err
        propagate=0
        qualname=db
        [handler_err]
        class=StreamHandler
        args=(sys.stderr,)
        formatter=f
        [formatter_f]
        format=%(name)s|%(message)s
    """))
    script(tmp_path, "fc.py", """
        import logging, logging.config
        logging.config.fileConfig("logging.ini")
        logging.getLogger("web").info("request")
        logging.getLogger("db").info("query")
        logging.getLogger("db").debug("db debug")       # the app's level, below ours
        logging.getLogger("web").debug("hidden")
    """)
    out = tmp_path / "fc.rrd"
    done = run(["--sink", f"save:{out}", "--", "fc.py"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "web|request\ndb|query\ndb|db debug\n"
    assert [(r.logger, r.message) for r in records(out)] == [("web", "request"), ("db", "query")]


# --- programs -----------------------------------------------------------------------------------


def test_module_with_dash_m(tmp_path: Path) -> None:
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(textwrap.dedent("""
        import logging, sys
        logging.getLogger("shop.main").warning("args %s", sys.argv[1:])
    """))
    out = tmp_path / "m.rrd"
    done = run(["--sink", f"save:{out}", "--", "python", "-m", "shop", "--flag"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r.message for r in records(out)] == ["args ['--flag']"]
    assert info(out).application_id == "shop"


def test_console_script_on_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "shoptool"
    tool.write_text(f"#!{sys.executable}\n" + textwrap.dedent("""
        import logging, sys
        logging.basicConfig(format="%(message)s")
        logging.getLogger("tool").warning("tool ran with %s", sys.argv[1:])
        sys.exit(5)
    """))
    tool.chmod(0o755)
    env = run_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    out = tmp_path / "c.rrd"
    done = run(["--sink", f"save:{out}", "--", "shoptool", "x"], cwd=tmp_path, env=env)
    assert done.returncode == 5
    assert done.stderr == "tool ran with ['x']\n"
    assert [r.message for r in records(out)] == ["tool ran with ['x']"]
    assert info(out).application_id == "shoptool"


def test_missing_program_and_bad_sink(tmp_path: Path) -> None:
    missing = run(["--sink", "off", "--", "no-such-program-here"], cwd=tmp_path)
    assert missing.returncode == 127
    assert missing.stderr == "rerun-logging run: no-such-program-here: command not found\n"
    missing = run(["--", "nothere.py"], cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (127, "rerun-logging run: nothere.py: no such file\n")
    nothing = run([], cwd=tmp_path)
    assert nothing.returncode == 2 and nothing.stderr.startswith("rerun-logging run: no program given")
    bad = run(["--sink", "nowhere", "--", "python", "-c", "pass"], cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.startswith("rerun-logging run: bad --sink 'nowhere': unknown sink")
    assert bad.stderr.count("\n") == 1


def test_serve_on_a_named_port_that_is_taken_still_runs_the_program(tmp_path: Path) -> None:
    import socket

    program = ("import logging; log = logging.getLogger('shop'); "
               "[log.warning('order %d', n) for n in range(3)]; print('ran')")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(["--sink", f"serve:127.0.0.1:{port}", "--", "python", "-c", program],
                   cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "ran\n"), done.stderr
    (said,) = [line for line in done.stderr.splitlines() if "cannot serve" in line]
    assert said.startswith(f"rerun-logging run: cannot serve the web viewer: cannot listen on "
                           f"127.0.0.1:{port}: the address is in use; running the program anyway")
    (counted,) = [line for line in done.stderr.splitlines() if "not served" in line]
    assert "3 records" in counted  # the program's records reached the runner


def test_serve_on_a_taken_default_port_serves_on_a_free_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
) -> None:
    import socket

    from rerun_logging.instrument import runner
    from rerun_logging.sinks import MODES

    monkeypatch.setenv("CI", "1")
    for name in [n for n in os.environ if n.startswith("RERUN_LOGGING_") and n != "RERUN_LOGGING_WEB_PORT"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr(MODES["serve"], "default_port", port)  # what "serve" defaults to
        status = runner.run(["python", "-c", "import logging; logging.warning('hi'); print('ran')"],
                            sink="serve")
    out, err = capfd.readouterr()
    assert (status, out) == (0, "ran\n"), err
    (said,) = [line for line in err.splitlines() if "is taken" in line]
    assert f"port {port} is taken; web UI on http://127.0.0.1:" in said
    assert "cannot serve" not in err


def test_death_by_signal_is_128_plus_n(tmp_path: Path) -> None:
    script(tmp_path, "die.py", "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    done = run(["--sink", "off", "--", "die.py"], cwd=tmp_path)
    assert done.returncode == 128 + signal.SIGTERM


# --- subprocesses ---------------------------------------------------------------------------

PARENT = """
import logging, subprocess, sys
logging.getLogger("parent").warning("parent before")
subprocess.run([sys.executable, "-c",
                "import logging; logging.getLogger('child').warning('from the child')"], check=True)
logging.getLogger("parent").warning("parent after")
"""


def test_subprocess_streams_under_the_same_recording(tmp_path: Path) -> None:
    script(tmp_path, "parent.py", PARENT)
    out = tmp_path / "p.rrd"
    done = run(["--sink", f"save:{out}", "--", "parent.py"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r.message for r in records(out)] == ["parent before", "parent after"]
    beside = sorted(tmp_path.glob("p.*.rrd"))
    assert len(beside) == 1, list(tmp_path.iterdir())
    assert [r.message for r in records(beside[0])] == ["from the child"]
    top, child = info(out), info(beside[0])
    assert child.recording_id == top.recording_id
    assert child.pid != top.pid and beside[0].name == f"p.{child.pid}.rrd"


def test_the_apps_own_file_is_kept_from_its_subprocesses_too(tmp_path: Path) -> None:
    """The run saves to p.rrd, the app itself to app.rrd: a subprocess of the app that
    also saves to app.rrd writes beside it, as it would without the run."""
    child = ("import logging, rerun_logging; h = rerun_logging.RerunHandler('save:app.rrd'); "
             "logging.getLogger('child').addHandler(h); logging.getLogger('child').warning('child')")
    script(tmp_path, "app.py", textwrap.dedent(f"""
        import logging, subprocess, sys, rerun_logging
        logging.getLogger("app").addHandler(rerun_logging.RerunHandler("save:app.rrd"))
        logging.getLogger("app").warning("app")
        subprocess.run([sys.executable, "-c", {child!r}], check=True)
    """))
    done = run(["--sink", f"save:{tmp_path / 'p.rrd'}", "--", "app.py"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r.message for r in records(tmp_path / "app.rrd")] == ["app"]
    (beside,) = [p for p in tmp_path.glob("app.*.rrd")]
    assert [r.message for r in records(beside)] == ["child"]


def test_top_only_leaves_subprocesses_alone(tmp_path: Path) -> None:
    script(tmp_path, "parent.py", PARENT + textwrap.dedent("""
        import os
        print(sorted(k for k in os.environ if k.startswith("RERUN_LOGGING")))
        print(os.environ.get("PYTHONPATH"))
    """))
    out = tmp_path / "t.rrd"
    env = run_env()
    done = run(["--top-only", "--sink", f"save:{out}", "--", "parent.py"], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert [r.message for r in records(out)] == ["parent before", "parent after"]
    assert list(tmp_path.glob("t.*.rrd")) == []
    names, pythonpath = done.stdout.splitlines()
    assert names == "['RERUN_LOGGING_WEB_PORT']"
    assert pythonpath == env["PYTHONPATH"]


# --- viewers ------------------------------------------------------------------------------------


def test_connect_into_a_real_viewer(tmp_path: Path) -> None:
    script(tmp_path, "parent.py", PARENT)
    saved = tmp_path / "saved"
    viewer = ViewerProcess(save_dir=saved)
    try:
        done = run(["--sink", f"connect:127.0.0.1:{viewer.port}", "--", "parent.py"], cwd=tmp_path)
    finally:
        assert viewer.stop() == 0
    assert done.returncode == 0, done.stderr
    files = sorted(saved.glob("*.rlg"))
    assert len(files) == 2, viewer.lines
    messages = sorted(r.message for f in files for r in records(f))
    assert messages == ["from the child", "parent after", "parent before"]
    assert len({info(f).recording_id for f in files}) == 1


def test_serve_shows_the_program_and_its_subprocess(tmp_path: Path) -> None:
    from websockets.sync.client import connect

    script(tmp_path, "served.py", """
        import logging, subprocess, sys
        logging.getLogger("top").warning("top is up")
        subprocess.run([sys.executable, "-c",
                        "import logging; logging.getLogger('kid').warning('kid is up')"], check=True)
        sys.stdin.readline()                     # until the test saw both
        logging.getLogger("top").warning("bye")
    """)
    process = subprocess.Popen(
        [*RUN, "--sink", "serve:127.0.0.1:0", "--", "served.py"], cwd=tmp_path, env=run_env(),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stderr is not None and process.stdin is not None
        err = Lines(process.stderr)
        url = err.first("web UI on ").split("web UI on ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:")
        ws_url, origin = feed_of(url)
        seen: dict[str, Any] = {}
        deadline = time.monotonic() + TIMEOUT
        with connect(ws_url, origin=origin) as ws:
            while not {"top is up", "kid is up"} <= seen.keys():
                message = read_message(ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
                if message["type"] == "records":
                    for text in message["message"]:
                        seen[text] = (message["recording"], message.get("pid"))
        assert seen["top is up"][0] == seen["kid is up"][0]  # one recording
        assert seen["top is up"][1] != seen["kid is up"][1]  # two processes
        process.stdin.write("\n")
        process.stdin.close()
        assert process.wait(timeout=TIMEOUT) == 0  # stdout is no terminal: no lingering
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- uvicorn ------------------------------------------------------------------------------------

ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"made"})
"""


def test_uvicorn_access_records(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    (tmp_path / "tests_app.py").write_text(ASGI_APP)
    port = free_port()
    out = tmp_path / "uv.rrd"
    env = run_env()
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env['PATH']}"
    process = subprocess.Popen(
        [*RUN, "--sink", f"save:{out}", "--", "uvicorn", "tests_app:app", "--port", str(port)],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stderr is not None
        assert process.stdout is not None
        err, out_lines = Lines(process.stderr), Lines(process.stdout)
        err.first("Uvicorn running on")
        for path in ("/orders?id=7", "/health"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT) as response:
                assert response.status == 201
        out_lines.first('"GET /health HTTP/1.1" 201')  # uvicorn's own access log still prints
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    access = [r for r in records(out) if r.logger == "uvicorn.access"]
    assert len(access) == 2
    assert access[0].template == '%s - "%s %s HTTP/%s" %d'
    client, method, path, version, status = access[0].args  # type: ignore[misc]
    assert client.startswith("127.0.0.1:")
    assert (method, path, version, status) == ("GET", "/orders?id=7", "1.1", 201)
    assert access[1].args[2] == "/health"  # type: ignore[index]
    assert any(r.logger == "uvicorn.error" and "Shutting down" in r.message for r in records(out))
    assert info(out).application_id == "uvicorn"


# --- the sitecustomize --------------------------------------------------------------------------


def test_an_existing_sitecustomize_still_runs(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os\nos.environ['SITE_MARKER'] = 'ran'\nMARK = 'theirs'\n"
    )
    script(tmp_path, "check.py", """
        import logging, os, sitecustomize
        print(os.environ.get("SITE_MARKER"), sitecustomize.MARK)
        logging.getLogger("check").warning("instrumented too")
    """)
    env = run_env()
    env["PYTHONPATH"] = f"{site}{os.pathsep}{env['PYTHONPATH']}"
    out = tmp_path / "s.rrd"
    done = run(["--sink", f"save:{out}", "--", "check.py"], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ran theirs\n"
    assert [r.message for r in records(out)] == ["instrumented too"]


def test_unset_costs_nothing(tmp_path: Path) -> None:
    env = run_env()
    env["PYTHONPATH"] = f"{SITE_DIR}{os.pathsep}{env['PYTHONPATH']}"
    code = ("import sys; print(sys.modules['sitecustomize'].__file__); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rerun_logging'))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    where, modules = done.stdout.splitlines()
    assert where == os.path.join(SITE_DIR, "sitecustomize.py")
    assert modules == "[]"
    assert done.stderr == ""


def test_a_broken_config_is_one_line_and_the_program_runs(tmp_path: Path) -> None:
    env = run_env()
    env[CONFIG_ENV_VAR] = "{not json"
    env["PYTHONPATH"] = f"{SITE_DIR}{os.pathsep}{env['PYTHONPATH']}"
    done = subprocess.run([sys.executable, "-c", "print('ran')"], env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert (done.returncode, done.stdout) == (0, "ran\n")
    assert done.stderr.startswith("rerun-logging run: not instrumented")
    assert done.stderr.count("\n") == 1


# --- a terminal ---------------------------------------------------------------------------------


class Terminal:
    """The runner on a pseudo-terminal of its own (its session's controlling terminal)."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        import pty

        env = run_env()
        pid, fd = pty.fork()
        if pid == 0:  # the child: exec at once
            try:
                os.chdir(cwd)
                os.execve(sys.executable, [*RUN, *args], env)
            finally:
                os._exit(99)
        self.pid, self.fd, self.output = pid, fd, ""

    def wait_for(self, text: str) -> None:
        import select

        deadline = time.monotonic() + TIMEOUT
        while text not in self.output:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} on the terminal: {self.output!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError(f"the terminal closed without {text!r}: {self.output!r}")
                self.output += data.decode(errors="replace")

    def type(self, data: bytes) -> None:
        os.write(self.fd, data)

    def status(self) -> int:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            try:
                self.wait_for("\0never\0")
            except AssertionError:
                pass
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"the runner did not exit: {self.output!r}")


INTERRUPTIBLE = """
import sys, time
try:
    print("ready", flush=True)
    sys.stdin.readline()
except KeyboardInterrupt:
    print("interrupted", flush=True)
    try:
        time.sleep(1.0)   # a second SIGINT (forwarded by the runner too) would land here
    except KeyboardInterrupt:
        print("interrupted twice", flush=True)
        sys.exit(9)
    sys.exit(4)
"""


def test_ctrl_c_on_a_terminal_reaches_the_program_once(tmp_path: Path) -> None:
    script(tmp_path, "wait.py", INTERRUPTIBLE)
    terminal = Terminal(["--sink", "off", "--", "wait.py"], tmp_path)
    terminal.wait_for("ready")
    terminal.type(b"\x03")
    terminal.wait_for("interrupted")
    assert terminal.status() == 4, terminal.output
    assert "twice" not in terminal.output and "Traceback" not in terminal.output


def test_serve_on_a_terminal_keeps_serving_until_ctrl_c(tmp_path: Path) -> None:
    script(tmp_path, "short.py", "import logging, sys\nlogging.warning('short')\nsys.exit(6)\n")
    terminal = Terminal(["--sink", "serve:127.0.0.1:0", "--", "short.py"], tmp_path)
    terminal.wait_for("still serving http://127.0.0.1:")
    assert "exited with status 6" in terminal.output
    terminal.type(b"\x03")
    assert terminal.status() == 6, terminal.output


def test_sink_from_the_environment_and_rerun_logging_itself_is_not_instrumented(tmp_path: Path) -> None:
    script(tmp_path, "app.py", "import logging\nlogging.getLogger('e').warning('via env')\n")
    env = run_env(RERUN_LOGGING_SINK=f"save:{tmp_path / 'env.rrd'}")
    done = run(["--", "app.py"], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert [r.message for r in records(tmp_path / "env.rrd")] == ["via env"]
    # rerun-logging's own commands (the viewer that spawn starts, print, verify) are left alone
    done = run(["--sink", f"save:{tmp_path / 'self.rrd'}", "--", "python", "-m", "rerun_logging",
                "verify", str(tmp_path / "env.rrd")], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "self.rrd").exists()


def test_default_spawn_starts_one_viewer_that_takes_every_process(tmp_path: Path) -> None:
    from rerun_logging.sinks.spawn import viewer_log_path

    script(tmp_path, "parent.py", PARENT)
    port = free_port()
    log = Path(viewer_log_path(port))
    log.unlink(missing_ok=True)
    env = run_env(RERUN_LOGGING_SINK=f"spawn:127.0.0.1:{port}")  # the default sink, on a free port
    try:
        done = run(["--", "parent.py"], cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + TIMEOUT
        while log.read_text().count("ended cleanly") < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert "parent[" in log.read_text()
        # two processes may both have started one: the second cannot listen and exits
        while len(viewer_pids(port)) != 1:
            assert time.monotonic() < deadline, viewer_pids(port)
            time.sleep(0.05)
    finally:
        for pid in viewer_pids(port):
            os.kill(pid, signal.SIGTERM)
        log.unlink(missing_ok=True)

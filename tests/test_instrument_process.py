"""Tests of ``rerun_logging.instrument.process``: what each process of ``rerun-logging run`` does.

Its pure parts are called directly: which command line is rerun-logging itself, how
:func:`start` reads and claims the run's configuration (with a plain dict for the
environment and sinks that install nothing), the rule of which records are made for
our handler only, and the wrappers it would put on ``logging.Logger``, called on a
logger of the test's own class rather than installed. Installing patches
``logging.Logger`` for the life of a process, so that is checked in one real
subprocess started with our ``sitecustomize`` on its path, without the runner.
(``tests/test_run.py`` runs whole programs under the runner: levels, caller
lines, dictConfig, subprocesses, serve.)
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

from rerun_logging import family
from rerun_logging.format import End, Record, RecordingInfo
from rerun_logging.instrument import CONFIG_ENV_VAR, SITE_DIR, RunConfig, process

from .conftest import child_env, read_messages

TIMEOUT = 60.0


# --- rerun-logging itself is never instrumented --------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["python", "-m", "rerun_logging"],
    ["python", "-m", "rerun_logging", "viewer", "--port", "0"],
    ["python", "-m", "rerun_logging.cli", "run"],
    ["python", "-mrerun_logging", "viewer"],
    ["python", "-u", "-E", "-m", "rerun_logging"],
    ["python", "-X", "dev", "-W", "error", "-m", "rerun_logging"],
    ["python", "-Xdev", "-Werror", "-m", "rerun_logging"],
    ["python", "--check-hash-based-pycs", "always", "-m", "rerun_logging"],
    ["/usr/bin/python3", "/venv/bin/rerun-logging", "run", "--", "app.py"],
    ["python", "rerun-logging"],
])
def test_rerun_logging_commands_are_recognised(argv: list[str]) -> None:
    assert process.is_rerun_logging_itself(argv)


@pytest.mark.parametrize("argv", [
    ["python"],
    ["python", "app.py"],
    ["python", "-m"],
    ["python", "-m", "rerun_logging_plugin"],
    ["python", "-m", "pytest", "-m", "rerun_logging"],  # -m of pytest, after the program
    ["python", "-c", "import rerun_logging"],
    ["python", "-crerun-logging"],
    ["python", "-X", "rerun_logging", "app.py"],  # -X takes the next word as its value
    ["python", "/tmp/rerun-logging.py"],
    ["python", "app.py", "-m", "rerun_logging"],  # the program's own arguments
])
def test_other_programs_are_not_rerun_logging(argv: list[str]) -> None:
    assert not process.is_rerun_logging_itself(argv)


def test_m_at_the_end_of_a_group_of_flags_is_recognised() -> None:
    assert process.is_rerun_logging_itself(["python", "-um", "rerun_logging", "viewer"])


# --- start(): the run's configuration ------------------------------------------------------------


@pytest.fixture
def no_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process is not instrumented, and not rerun-logging's own command, whatever ran it."""
    monkeypatch.setattr(process, "_handler", None)
    monkeypatch.setattr(process, "_top", True)
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "app.py"], raising=False)
    yield
    assert process.handler() is None, "a test installed the hooks in the test process"


def environ_for(config: RunConfig, **extra: str) -> dict[str, str]:
    return {CONFIG_ENV_VAR: config.to_env(), **extra}


def test_the_first_process_claims_the_run_as_its_top(no_handler: None) -> None:
    environ = environ_for(RunConfig(sink=["off"], application_id="app", runner_pid=1))
    assert process.start(environ) is None  # off: nothing installed
    claimed = RunConfig.from_env(environ[CONFIG_ENV_VAR])
    assert claimed.top_pid == os.getpid()
    assert claimed == RunConfig(sink=["off"], application_id="app", runner_pid=1, top_pid=os.getpid())


def test_a_process_started_by_the_top_one_does_not_claim_it(no_handler: None) -> None:
    config = RunConfig(sink=["off"], application_id="app", top_pid=os.getpid() + 1)
    environ = environ_for(config)
    assert process.start(environ) is None
    assert environ == environ_for(config)  # untouched


def test_a_process_below_the_top_gets_no_sink_meant_for_the_top_only(
    no_handler: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``stdout`` is the top process's alone: the others are not instrumented at all."""
    installed: list[Any] = []
    monkeypatch.setattr(process, "install", lambda *args: installed.append(args))
    below = environ_for(RunConfig(sink=["stdout"], application_id="app", top_pid=os.getpid() + 1))
    assert process.start(below) is None and installed == []
    top = environ_for(RunConfig(sink=["stdout", "memory"], application_id="app", level=15))
    process.start(top)
    assert installed == [(["stdout", "memory"], "app", 15)]


def test_rerun_logging_itself_claims_nothing_and_installs_nothing(
    no_handler: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "-m", "rerun_logging", "viewer"])
    monkeypatch.setattr(process, "install", lambda *args: pytest.fail("installed"))
    config = RunConfig(sink=["memory"], application_id="app")
    environ = environ_for(config)
    assert process.start(environ) is None
    assert environ == environ_for(config)


def test_a_configuration_that_is_not_ours_is_a_value_error(no_handler: None) -> None:
    with pytest.raises(ValueError, match=f"{CONFIG_ENV_VAR} is not JSON"):
        process.start({CONFIG_ENV_VAR: "{nope"})
    with pytest.raises(ValueError, match="holds no run configuration"):
        process.start({CONFIG_ENV_VAR: '{"sink": "save:x.rrd"}'})


def test_top_only_gives_the_programs_children_the_environment_they_would_have_had(
    no_handler: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(family, "_recording_id", None)
    monkeypatch.setenv(family.RECORDING_ID_ENV_VAR, "rid-of-the-run")
    config = RunConfig(sink=["off"], application_id="app", top_only=True, pythonpath="/theirs",
                       recording_id_set=True)
    environ = environ_for(config, PYTHONPATH=f"{SITE_DIR}{os.pathsep}/theirs", OTHER="kept")
    environ[family.RECORDING_ID_ENV_VAR] = "rid-of-the-run"
    assert process.start(environ) is None
    assert environ == {"PYTHONPATH": "/theirs", "OTHER": "kept"}
    assert family.recording_id() == "rid-of-the-run"  # this process keeps the run's id


def test_top_only_without_a_pythonpath_before_removes_it_and_keeps_a_recording_id_it_did_not_set(
    no_handler: None,
) -> None:
    config = RunConfig(sink=["off"], application_id="app", top_only=True, pythonpath=None)
    environ = environ_for(config, PYTHONPATH=SITE_DIR, RERUN_LOGGING_RECORDING_ID="users-own")
    process.start(environ)
    assert environ == {"RERUN_LOGGING_RECORDING_ID": "users-own"}


# --- records for our handler only -----------------------------------------------------------------


class Calls(logging.Logger):
    """A logger that records what reaches ``_log`` and ``log``, and how deep in "ours only"."""

    def __init__(self, name: str, level: int = logging.NOTSET) -> None:
        super().__init__(name, level)
        self.calls: list[tuple[Any, ...]] = []

    def _log(self, level: int, msg: object, args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.calls.append(("_log", level, msg, args, kwargs, process._ours_only.depth))

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("log", level, msg, args, kwargs, process._ours_only.depth))


@pytest.fixture
def ours_at_info(monkeypatch: pytest.MonkeyPatch) -> logging.Handler:
    handler = logging.NullHandler(logging.INFO)
    monkeypatch.setattr(process, "_handler", handler)
    return handler


def test_for_us_only_follows_our_level_disable_and_disabled(ours_at_info: logging.Handler) -> None:
    logger = Calls("quiet", logging.WARNING)
    assert process._for_us_only(logger, logging.INFO)
    assert process._for_us_only(logger, logging.ERROR)
    assert not process._for_us_only(logger, logging.DEBUG)  # below our handler's level
    logging.disable(logging.INFO)
    try:
        assert not process._for_us_only(logger, logging.INFO)
        assert process._for_us_only(logger, logging.WARNING)
    finally:
        logging.disable(logging.NOTSET)
    logger.disabled = True
    assert not process._for_us_only(logger, logging.ERROR)


def test_for_us_only_is_never_true_without_a_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "_handler", None)
    assert not process._for_us_only(Calls("x", logging.CRITICAL), logging.CRITICAL)


def test_a_level_method_makes_the_record_for_us_only_below_the_apps_level(
    ours_at_info: logging.Handler,
) -> None:
    info = process._level_method(logging.INFO, logging.Logger.info)
    assert info.__wrapped__ is logging.Logger.info and info.__name__ == "info"  # type: ignore[attr-defined]
    enabled, quiet = Calls("enabled", logging.DEBUG), Calls("quiet", logging.WARNING)
    info(enabled, "m %s", 1, extra={"k": "v"}, stacklevel=2)
    info(quiet, "m %s", 2)
    assert enabled.calls == [("_log", logging.INFO, "m %s", (1,), {"extra": {"k": "v"}, "stacklevel": 2}, 0)]
    assert quiet.calls == [("_log", logging.INFO, "m %s", (2,), {}, 1)]  # inside "ours only"
    assert process._ours_only.depth == 0  # left again
    debug = process._level_method(logging.DEBUG, logging.Logger.debug)
    debug(quiet, "below ours too")
    assert len(quiet.calls) == 1


def test_log_checks_its_level_as_the_stdlib_does(ours_at_info: logging.Handler,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    log = process._log_method(logging.Logger.log)
    quiet = Calls("quiet", logging.WARNING)
    log(quiet, 25, "custom level")
    assert quiet.calls == [("_log", 25, "custom level", (), {}, 1)]
    with pytest.raises(TypeError, match="level must be an integer"):
        log(quiet, "INFO", "text level")
    monkeypatch.setattr(logging, "raiseExceptions", False)
    log(quiet, "INFO", "text level")  # silently ignored, as the stdlib does
    assert len(quiet.calls) == 1


def test_an_adapter_passes_on_what_only_our_handler_takes(ours_at_info: logging.Handler) -> None:
    adapter_log = process._adapter_log_method(logging.LoggerAdapter.log)
    quiet = Calls("quiet", logging.WARNING)
    adapter = logging.LoggerAdapter(quiet, {"request": "r1"})
    adapter_log(adapter, logging.INFO, "served %s", "/x")
    adapter_log(adapter, logging.DEBUG, "below ours")
    assert [c[:4] for c in quiet.calls] == [("log", logging.INFO, "served %s", ("/x",))]
    assert quiet.calls[0][4]["extra"] == {"request": "r1"}  # LoggerAdapter.process ran
    nested = logging.LoggerAdapter(logging.LoggerAdapter(quiet, {}), {})
    assert process._logger_of(nested) is quiet


def test_stacklevel_is_raised_by_one_only_where_findcaller_cannot_skip_our_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    adapter = logging.LoggerAdapter(logging.Logger("tests.stacklevel"), {})
    kwargs: dict[str, Any] = {"extra": {}}
    if process._INTERNAL_FRAMES_HOOK:  # 3.11 and later: our frames are skipped as logging's
        assert process._one_frame_deeper(adapter, kwargs) is kwargs
    monkeypatch.setattr(process, "_INTERNAL_FRAMES_HOOK", False)  # as on 3.10
    assert process._one_frame_deeper(adapter, kwargs) == {"extra": {}, "stacklevel": 2}
    assert process._one_frame_deeper(adapter, {"stacklevel": 3}) == {"stacklevel": 4}
    odd = {"stacklevel": "x"}
    assert process._one_frame_deeper(adapter, odd) is odd
    not_a_logger = logging.LoggerAdapter(SimpleNamespace(), {})  # type: ignore[arg-type]
    assert process._one_frame_deeper(not_a_logger, kwargs) is kwargs


def test_takes_stacklevel() -> None:
    def with_it(level: int, msg: str, args: Any, *, stacklevel: int = 1) -> None: ...
    def with_kwargs(level: int, msg: str, args: Any, **kwargs: Any) -> None: ...
    def without(level: int, msg: str, args: Any, exc_info: Any = None) -> None: ...

    assert process._takes_stacklevel(logging.Logger._log)
    assert process._takes_stacklevel(with_it) and process._takes_stacklevel(with_kwargs)
    assert not process._takes_stacklevel(without)
    assert not process._takes_stacklevel(len)  # no code object


# --- what is kept out of logging's own lists, and what is closed at exit ---------------------------


def test_unregister_takes_the_handler_out_of_loggings_list_only() -> None:
    ours, theirs = logging.NullHandler(), logging.NullHandler()
    try:
        process._unregister(ours)
        refs = [ref() for ref in logging._handlerList]  # type: ignore[attr-defined]
        assert ours not in refs and theirs in refs
    finally:
        theirs.close()


class Closable(logging.Handler):
    def __init__(self, emitted: int) -> None:
        super().__init__()
        self.stats = SimpleNamespace(emitted=emitted)
        self.closed = False

    def close(self) -> None:
        self.closed = True
        super().close()


@pytest.mark.parametrize(("top", "emitted", "closed"), [
    (True, 0, True), (True, 3, True), (False, 3, True), (False, 0, False),
])
def test_at_exit_only_a_subprocess_that_logged_nothing_is_left_unclosed(
    monkeypatch: pytest.MonkeyPatch, top: bool, emitted: int, closed: bool,
) -> None:
    handler = Closable(emitted)
    monkeypatch.setattr(process, "_handler", handler)
    monkeypatch.setattr(process, "_top", top)
    process._close()
    assert handler.closed is closed
    handler.close()


def test_report_is_one_line_and_never_raises(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    process.report("a problem")
    assert capsys.readouterr().err == "rerun-logging run: a problem\n"
    monkeypatch.setattr(sys, "stderr", None)
    process.report("nowhere to say it")


# --- one real process ------------------------------------------------------------------------------

APP = textwrap.dedent("""
    import json, logging, os, subprocess, sys
    from rerun_logging.instrument import CONFIG_ENV_VAR, RunConfig, process

    ours = process.handler()
    checks = {
        "handler": type(ours).__name__,
        "level": ours.level,
        "on_root": ours in logging.root.handlers,
        "listed": any(ref() is ours for ref in logging._handlerList),
        "again": process.install(["memory"], "other", 10) is ours,
        "top_pid": RunConfig.from_env(os.environ[CONFIG_ENV_VAR]).top_pid == os.getpid(),
        "wrapped": [getattr(logging.Logger, name).__wrapped__.__name__
                    for name in ("debug", "info", "warning", "error", "critical", "log")],
        "adapter": logging.LoggerAdapter.log.__wrapped__.__name__,
        "call_handlers": logging.Logger.callHandlers.__wrapped__.__name__,
    }
    printed = logging.StreamHandler(sys.stdout)
    logging.getLogger("app").addHandler(printed)                   # the app's own handler
    logging.getLogger("app").info("below the app's level")        # root is at WARNING
    logging.getLogger("app").warning("at the app's level")
    logging.getLogger("app").debug("below ours")
    alone = logging.getLogger("alone")
    alone.propagate = False                                        # no handler reaches it
    alone.setLevel(logging.INFO)
    alone.info("from a logger that does not propagate")
    logging.LoggerAdapter(logging.getLogger("app.adapted"), {"request": "r1"}).info("adapted")
    child = subprocess.run([sys.executable, "-c",
        "from rerun_logging.instrument import process; import os; "
        "print(process.handler() is not None, process._top, os.getpid())"],
        capture_output=True, text=True, check=True)
    checks["child"] = child.stdout.split()
    sys.stderr.write(json.dumps(checks) + "\\n")
""")


def test_a_real_process_installs_one_handler_off_loggings_lists_and_wraps_the_logger_methods(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run.rrd"
    (tmp_path / "app.py").write_text(APP)
    env = child_env()
    for name in [n for n in env if n.startswith("RERUN_LOGGING_") and n != "RERUN_LOGGING_WEB_PORT"]:
        del env[name]
    env["PYTHONPATH"] = f"{SITE_DIR}{os.pathsep}{env['PYTHONPATH']}"
    env[CONFIG_ENV_VAR] = RunConfig(sink=[f"save:{out}"], application_id="proc-test").to_env()
    done = subprocess.run([sys.executable, "app.py"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    checks = json.loads(done.stderr.splitlines()[-1])
    child_installed, child_top, child_pid = checks.pop("child")
    assert checks == {
        "handler": "RerunHandler", "level": logging.INFO, "on_root": False, "listed": False,
        "again": True, "top_pid": True,
        "wrapped": ["debug", "info", "warning", "error", "critical", "log"],
        "adapter": "log", "call_handlers": "callHandlers",
    }
    # the app's handler printed only what the app's levels let through
    assert done.stdout == "at the app's level\n"
    # the subprocess was instrumented, not as the top, and left no file: it logged nothing
    assert (child_installed, child_top) == ("True", "False")
    assert not (tmp_path / f"run.{child_pid}.rrd").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.py", "run.rrd"]
    # what reached our handler, closed at exit: the stream ends cleanly
    messages = read_messages(out)
    assert isinstance(messages[0], RecordingInfo) and messages[0].application_id == "proc-test"
    assert messages[-1] == End()
    got = [(r.logger, r.message, r.extras) for r in messages if isinstance(r, Record)]
    assert got == [
        ("app", "below the app's level", {}),
        ("app", "at the app's level", {}),
        ("alone", "from a logger that does not propagate", {}),
        ("app.adapted", "adapted", {"request": "r1"}),
    ]

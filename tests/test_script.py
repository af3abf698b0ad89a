"""The flags helpers: ``script_add_args``, ``script_setup``, ``script_teardown``.

The flag-to-sink mapping is checked directly; each mode is then run for real with
``examples/quickstart.py`` in a fresh interpreter.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rerun_logging import RerunHandler, script_add_args, script_setup, script_teardown
from rerun_logging.format import Record
from rerun_logging.script import sink_for
from rerun_logging.spec import SinkSpecError
from rerun_logging.viewer.feed import read_message

from .conftest import ROOT, ViewerProcess, child_env, feed_of, read_messages

QUICKSTART = str(ROOT / "examples" / "quickstart.py")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    script_add_args(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize("argv, sink", [
    ((), "spawn"),
    (("--headless",), None),
    (("--connect",), "connect"),
    (("--connect", "--url", "10.0.0.5:7000"), "connect:10.0.0.5:7000"),
    (("--connect", "--url", "tcp://[::1]:7000"), "connect:[::1]:7000"),
    (("--serve",), "serve"),
    (("--serve", "--url", "http://127.0.0.1:8080/"), "serve:127.0.0.1:8080"),
    (("--save", "out.rrd"), "save:out.rrd"),
    (("--stdout",), "stdout"),
])
def test_flags_choose_the_sink(argv: tuple[str, ...], sink: str | None) -> None:
    assert sink_for(parse(*argv)) == sink


@pytest.mark.parametrize("argv, sink", [
    (("--rerun",), "rerun:spawn"),
    (("--rerun", "--headless"), "rerun"),
    (("--rerun", "--save", "out.rrd"), "rerun:save:out.rrd"),
    (("--rerun", "--connect"), "rerun:connect"),
    (("--rerun", "--connect", "--url", "10.0.0.5:9876"), "rerun:connect:rerun+http://10.0.0.5:9876/proxy"),
    (("--rerun", "--serve"), "rerun:serve"),
    (("--rerun", "--serve", "--url", "127.0.0.1:9877"), "rerun:serve:9877"),
])
def test_rerun_sends_the_same_modes_to_the_rerun_viewer(argv: tuple[str, ...], sink: str) -> None:
    pytest.importorskip("rerun")
    assert sink_for(parse(*argv)) == sink


def test_rerun_has_no_stdout_form() -> None:
    with pytest.raises(SinkSpecError, match="--rerun --stdout: the rerun sink has no stdout form"):
        sink_for(parse("--rerun", "--stdout"))


def test_rerun_save_through_the_flags_writes_a_rerun_file(tmp_path: Path) -> None:
    pytest.importorskip("rerun")
    done = subprocess.run(
        [sys.executable, QUICKSTART, "--rerun", "--save", "q.rrd"], cwd=tmp_path,
        env=child_env(), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "q.rrd").read_bytes()[:3] == b"RRF"  # Rerun's own format, not ours


def test_modes_are_exclusive_and_bad_values_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--save", "x.rrd", "--serve")
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("--log-level", "LOUD")
    assert "unknown level 'LOUD'" in capsys.readouterr().err
    with pytest.raises(SinkSpecError, match="--url 'nowhere': bad address"):
        sink_for(parse("--connect", "--url", "nowhere"))


def test_help_says_what_each_flag_does() -> None:
    parser = argparse.ArgumentParser()
    script_add_args(parser)
    text = parser.format_help()
    for flag in ("--headless", "--connect", "--serve", "--save PATH", "--stdout", "--rerun", "--url HOST:PORT",
                 "--log-level LEVEL", "--app-id ID"):
        assert flag in text


def test_setup_attaches_to_root_at_the_level_and_teardown_closes(tmp_path: Path) -> None:
    path = tmp_path / "setup.rrd"
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    handler = script_setup(parse("--save", str(path), "--log-level", "debug", "--app-id", "mine"), "app")
    assert isinstance(handler, RerunHandler) and handler in root.handlers
    assert root.level == logging.DEBUG and handler.level == logging.DEBUG
    logging.getLogger("tests.script").debug("recorded")
    script_teardown(parse("--save", str(path)))
    assert handler not in root.handlers
    messages = read_messages(path)
    assert messages[0].application_id == "mine"
    assert [m.message for m in messages if isinstance(m, Record)] == ["recorded"]


def run_quickstart(*argv: str, cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, QUICKSTART, *argv], cwd=cwd, env=child_env(), capture_output=True,
        text=True, timeout=60, **kwargs,  # type: ignore[arg-type]
    )


def test_save_then_print(tmp_path: Path) -> None:
    result = run_quickstart("--save", "run.rrd", "--count", "14", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = [m for m in read_messages(tmp_path / "run.rrd") if isinstance(m, Record)]
    assert [r.message for r in records] == [
        "starting 14 work items", "item 6 is slow", "item 13 is slow", "done"]
    assert records[1].extras == {"item": 6, "latency_ms": 126}


def test_stdout_in_a_pipe_into_the_viewer_reader(tmp_path: Path) -> None:
    app = subprocess.Popen([sys.executable, QUICKSTART, "--stdout", "--log-level", "DEBUG", "--count", "3"],
                           cwd=tmp_path, env=child_env(), stdout=subprocess.PIPE)
    reader = subprocess.run([sys.executable, "-m", "rerun_logging", "print", "-"], stdin=app.stdout,
                            env=child_env(), capture_output=True, text=True, timeout=60)
    assert app.stdout is not None
    app.stdout.close()
    assert app.wait(30) == 0 and reader.returncode == 0, reader.stderr
    lines = reader.stdout.splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "starting 3 work items", "item 0 item=0", "item 1 item=1", "item 2 item=2", "done"]


def test_stdout_refuses_a_terminal_without_failing_the_script(tmp_path: Path) -> None:
    import pty

    controller, terminal = pty.openpty()
    try:
        result = subprocess.run([sys.executable, QUICKSTART, "--stdout"], cwd=tmp_path, env=child_env(),
                                stdout=terminal, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.returncode == 0, result.stderr
    assert "terminal" in result.stderr


def test_connect_streams_into_a_running_viewer(tmp_path: Path) -> None:
    viewer = ViewerProcess(save_dir=tmp_path / "saved")
    try:
        result = run_quickstart("--connect", "--url", f"127.0.0.1:{viewer.port}", "--count", "7",
                                cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    finally:
        viewer.stop()
    (saved,) = (tmp_path / "saved").glob("*.rlg")
    records = [m for m in read_messages(saved) if isinstance(m, Record)]
    assert [r.message for r in records] == ["starting 7 work items", "item 6 is slow", "done"]


def test_headless_only_buffers(tmp_path: Path) -> None:
    result = run_quickstart("--headless", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and list(tmp_path.iterdir()) == []


def test_serve_keeps_serving_after_the_work_until_ctrl_c(tmp_path: Path) -> None:
    from websockets.sync.client import connect

    app = subprocess.Popen([sys.executable, QUICKSTART, "--serve", "--url", "127.0.0.1:0", "--count", "7"],
                           cwd=tmp_path, env=child_env(), stderr=subprocess.PIPE, text=True)
    assert app.stderr is not None
    try:
        url = None
        for line in app.stderr:
            if "press Ctrl-C to stop" in line:
                url = line.split(" on ", 1)[1].split(";", 1)[0]
                break
        assert url and url.startswith("http://127.0.0.1:"), line
        ws_url, origin = feed_of(url)
        with connect(ws_url, origin=origin) as ws:
            messages: list[str] = []
            while len(messages) < 3:
                batch = read_message(ws.recv(timeout=10))
                messages += batch.get("message", []) if batch["type"] == "records" else []
        assert messages == ["starting 7 work items", "item 6 is slow", "done"]
        app.send_signal(signal.SIGINT)
        assert app.wait(20) == 0
        assert "Ctrl-C received" in app.stderr.read()
    finally:
        if app.poll() is None:
            app.kill()
        app.stderr.close()


def test_serve_on_a_named_port_that_is_taken_does_not_block(tmp_path: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_quickstart("--serve", "--url", f"127.0.0.1:{port}", "--count", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "the web viewer is not served (see above); not waiting" in result.stderr
    assert "press Ctrl-C" not in result.stderr

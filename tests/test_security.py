"""The security promises of the README, checked where a test can check them.

Covered elsewhere, end to end: the WebSocket Origin, Host and token checks
(test_viewer_web.py, test_sinks_serve.py), log text staying text in a real
browser (test_browser_ui.py), size limits (test_viewer_limits.py, test_format.py,
test_fuzz.py) and file names in ``--save-dir`` (test_viewer.py).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from rerun_logging.spec import parse_one
from rerun_logging.viewer.server import DEFAULT_BIND, ViewerConfig
from rerun_logging.viewer.web import WebServer

PACKAGE = Path(__file__).resolve().parent.parent / "rerun_logging"
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle"}


def python_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_pickle_or_eval_anywhere_in_the_package() -> None:
    for path in python_files():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            else:
                names = set()
            assert not names & UNSAFE_MODULES, f"{path}: imports {names & UNSAFE_MODULES}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec"), f"{path}:{node.lineno}: {node.func.id}"


def test_the_page_never_turns_data_into_markup_or_code() -> None:
    scripts = sorted((PACKAGE / "viewer" / "static").glob("*.js"))
    assert scripts
    forbidden = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function")
    for path in scripts:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not forbidden.search(line), f"{path.name}:{number}: {line.strip()}"
    html = (PACKAGE / "viewer" / "static" / "index.html").read_text()
    assert "<script>" not in html and "style=" not in html and "onclick" not in html.lower()


def test_everything_listens_on_loopback_unless_asked() -> None:
    assert DEFAULT_BIND == "127.0.0.1"
    assert ViewerConfig().bind == "127.0.0.1" and ViewerConfig().web_address == "127.0.0.1"
    for mode in ("serve", "connect", "spawn"):
        assert parse_one(mode).host == "127.0.0.1"
    assert WebServer().loopback and WebServer().token is None
    beyond = WebServer("0.0.0.0", 0)
    assert not beyond.loopback and beyond.require_token and len(beyond.token or "") >= 32


def test_the_serve_sinks_port_for_children_is_always_loopback() -> None:
    from rerun_logging.backoff import Backoff
    from rerun_logging.sinks.serve import ServeSink

    config = ServeSink("0.0.0.0", 9090, 1 << 20, Backoff(1, 2, 3)).viewer_config()
    assert (config.bind, config.port) == ("127.0.0.1", 0)
    assert (config.web_address, config.web_port) == ("0.0.0.0", 9090)


def test_connections_that_do_not_speak_are_bounded_on_both_ports() -> None:
    from rerun_logging.viewer import server, web

    page = WebServer()
    assert page.max_opening == web.MAX_OPENING <= 64 and 0 < page.open_timeout <= 10
    assert web.ACCEPT_BACKLOG <= web.MAX_OPENING
    assert server.MAX_CONNECTIONS == 256 and server.MAX_LINGERING <= 64
    assert server.DEFAULT_HANDSHAKE_TIMEOUT <= 10


def test_a_failed_accept_is_one_line_per_burst_never_a_traceback() -> None:
    import asyncio
    import errno
    import socket

    from rerun_logging.viewer.server import Viewer

    lines: list[str] = []
    viewer = Viewer(ViewerConfig(web=False), report=lines.append)
    loop = asyncio.new_event_loop()
    listening = socket.socket()
    try:
        listening.bind(("127.0.0.1", 0))
        for _ in range(100):
            viewer._loop_exception(loop, {
                "message": "socket.accept() out of system resource", "socket": listening,
                "exception": OSError(errno.EMFILE, "Too many open files"),
            })
    finally:
        listening.close()
        loop.close()
    (line,) = lines
    assert line.startswith("cannot accept connections on 127.0.0.1:") and "Too many open files" in line
    assert "one line per burst" in line and "Traceback" not in line

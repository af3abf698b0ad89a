"""Opening a browser on the web UI (``viewer/browser.py``)."""

from __future__ import annotations

import sys
import time
import webbrowser
from pathlib import Path

import pytest

from rerun_logging.viewer.browser import can_open_browser, open_browser

TIMEOUT = 10.0


def test_a_browser_is_opened_only_when_asked_never_in_ci_and_with_a_display() -> None:
    assert not can_open_browser(False, {"DISPLAY": ":0"})
    assert not can_open_browser(True, {"DISPLAY": ":0", "CI": "1"})
    assert can_open_browser(True, {"DISPLAY": ":0"})
    assert can_open_browser(True, {"WAYLAND_DISPLAY": "wayland-0"})
    if sys.platform.startswith("linux"):
        assert not can_open_browser(True, {})


@pytest.mark.skipif(sys.platform == "win32", reason="a shebang script as the browser")
def test_the_browser_is_started_off_the_callers_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "fake-browser"
    browser.write_text(f"#!{sys.executable}\nimport sys\nopen({str(opened)!r}, 'w').write(sys.argv[1])\n")
    browser.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(browser))
    monkeypatch.setattr(webbrowser, "_tryorder", None)  # read BROWSER again
    monkeypatch.setattr(webbrowser, "_browsers", {})
    thread = open_browser("http://127.0.0.1:9090/?token=abc")
    assert thread.daemon
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    deadline = time.monotonic() + TIMEOUT
    while not (opened.exists() and opened.read_text()):
        assert time.monotonic() < deadline, "the browser was not started"
        time.sleep(0.01)
    assert opened.read_text() == "http://127.0.0.1:9090/?token=abc"


def test_a_browser_that_fails_to_start_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER", str(tmp_path / "no-such-browser"))
    monkeypatch.setattr(webbrowser, "_tryorder", None)
    monkeypatch.setattr(webbrowser, "_browsers", {})
    thread = open_browser("http://127.0.0.1:9090/")
    thread.join(TIMEOUT)
    assert not thread.is_alive()

"""The viewer's events as lines (``viewer/report.py``): the words people and tests read.

The lines on standard error are an interface (``listening on``, ``web UI on``,
``web UI not started``, ...): each event's line is pinned here, word for word.
"""

from __future__ import annotations

import inspect

import pytest

from rerun_logging.viewer import events as events_module
from rerun_logging.viewer.bursts import BurstReport
from rerun_logging.viewer.events import (
    AcceptFailed, CannotListen, Listening, NoStateFile, Note, NotStarted, OtlpListening, PeerConnected,
    PeerDisconnected, PeerFailed, PeerRefused, PeerTimedOut, PortTaken, PrintStopped, SourceEmpty,
    SourceUnreadable, Stopped, ViewerEvent, WebUINotStarted, WebUIStarted,
)
from rerun_logging.viewer.report import WEB_HINT, LineReport, event_line, say
from rerun_logging.viewer.store import StoreSummary

SUMMARY = StoreSummary(recordings=1, streams=2, connected=0, ended=2, records=30, dropped=1,
                       evicted_records=0, frames_held=4, bytes=1048576)
SUMMARY_TEXT = ("1 recording, 2 streams (0 connected, 2 ended), 30 records (0 evicted from memory), "
                "1 dropped by apps, 1.0 MiB held")

LINES: list[tuple[ViewerEvent, str]] = [
    (NotStarted("x.rrd: cannot read: No such file or directory"),
     "x.rrd: cannot read: No such file or directory"),
    (CannotListen("127.0.0.1:9876", "Address already in use", True),
     "cannot listen on 127.0.0.1:9876: the address is in use (another viewer probably runs "
     "there; apps can stream to it)"),
    (CannotListen("10.1.1.1:9876", "Cannot assign requested address", False),
     "cannot listen on 10.1.1.1:9876: Cannot assign requested address"),
    (PortTaken(9876, 40001),
     "port 9876 is taken (another viewer probably runs there); using port 40001 instead"),
    (Listening("127.0.0.1:9876"), "listening on 127.0.0.1:9876"),
    (OtlpListening("127.0.0.1:4318"), "OTLP/HTTP on http://127.0.0.1:4318/v1/logs"),
    (CannotListen("127.0.0.1:4318", "Address already in use", True, otlp=True),
     "cannot listen for OTLP/HTTP on 127.0.0.1:4318: Address already in use"),
    (WebUIStarted("http://127.0.0.1:9090/"), "web UI on http://127.0.0.1:9090/"),
    (WebUIStarted("http://127.0.0.1:40002/", taken_port=9090),
     "port 9090 is taken; web UI on http://127.0.0.1:40002/"),
    (WebUINotStarted("127.0.0.1:9090", "the address is in use"),
     "web UI not started: cannot listen on 127.0.0.1:9090: the address is in use; "
     "the viewer runs without it (choose another --web-port)"),
    (NoStateFile("Permission denied"),
     "no state file (Permission denied); `rerun-logging stop` cannot find this viewer"),
    (PeerConnected("127.0.0.1:5555", "app[1] (recording r)", False),
     "127.0.0.1:5555: app[1] (recording r) connected"),
    (PeerConnected("127.0.0.1:5555", "app[1] (recording r)", True),
     "127.0.0.1:5555: app[1] (recording r) connected, resuming its stream"),
    (PeerRefused("127.0.0.1:5555", 12, "bad frame"), "refused 127.0.0.1:5555: at byte 12: bad frame"),
    (PeerTimedOut("127.0.0.1:5555", "no header within 10s"),
     "timed out 127.0.0.1:5555: no header within 10s"),
    (PeerFailed("127.0.0.1:5555", "KeyError('x')"),
     "internal error with 127.0.0.1:5555: KeyError('x'); connection closed"),
    (PeerDisconnected("127.0.0.1:5555", True, "127.0.0.1:5555: app[1] (recording r) disconnected: "
                      "ended cleanly; 3 records"),
     "127.0.0.1:5555: app[1] (recording r) disconnected: ended cleanly; 3 records"),
    (AcceptFailed("127.0.0.1:9876", "Too many open files", 1024, 0),
     "cannot accept connections on 127.0.0.1:9876: Too many open files (RLIMIT_NOFILE 1024); "
     "the port pauses 1s and accepts again (one line per burst)"),
    (AcceptFailed(None, "Too many open files", None, 7),
     "cannot accept connections: Too many open files; the port pauses 1s and accepts again "
     "(one line per burst) (the previous burst had 7 more)"),
    (SourceUnreadable("<stdin>", "Input/output error"), "<stdin>: cannot read: Input/output error"),
    (SourceEmpty("empty.rrd"), "empty.rrd: empty, nothing to load"),
    (PrintStopped("[Errno 32] Broken pipe"),
     "--print stopped: cannot write to standard output ([Errno 32] Broken pipe)"),
    (Note("web UI: answered 127.0.0.1:1 with 404 (one line per burst)"),
     "web UI: answered 127.0.0.1:1 with 404 (one line per burst)"),
    (Stopped(SUMMARY), f"stopped: {SUMMARY_TEXT}"),
    (Stopped(SUMMARY, 2, "/tmp/saved"), f"stopped: {SUMMARY_TEXT}; 2 files in /tmp/saved"),
    (Stopped(SUMMARY, 1, "/tmp/saved"), f"stopped: {SUMMARY_TEXT}; 1 file in /tmp/saved"),
]


@pytest.mark.parametrize("event, line", LINES, ids=[f"{type(e).__name__}-{i}" for i, (e, _) in enumerate(LINES)])
def test_each_event_is_said_as_its_line(event: ViewerEvent, line: str) -> None:
    assert event_line(event) == line


def test_every_event_has_a_line() -> None:
    kinds = {cls for _, cls in inspect.getmembers(events_module, inspect.isclass)
             if issubclass(cls, ViewerEvent) and cls is not ViewerEvent}
    assert kinds == {type(event) for event, _ in LINES}
    with pytest.raises(TypeError):
        event_line(ViewerEvent())


def test_events_are_immutable_and_compare_by_value() -> None:
    event = Listening("127.0.0.1:9876")
    assert event == Listening("127.0.0.1:9876") and hash(event) == hash(Listening("127.0.0.1:9876"))
    with pytest.raises(AttributeError):
        event.address = "elsewhere"  # type: ignore[misc]


def test_a_host_gives_its_own_hint_when_the_web_ui_does_not_start() -> None:
    event = WebUINotStarted("0.0.0.0:9090", "the address is in use")
    assert event_line(event).endswith(f"; {WEB_HINT}")
    assert event_line(event, "records are kept in memory only") == (
        "web UI not started: cannot listen on 0.0.0.0:9090: the address is in use; "
        "records are kept in memory only"
    )


def test_the_previous_burst_reads_as_the_burst_report_words_it() -> None:
    bursts = BurstReport(quiet=1.0)
    for now in (0.0, 0.1, 0.2, 5.0):  # a burst of 3, then a new one
        first = bursts.note(now)
    assert first and bursts.previous == 2
    line = event_line(AcceptFailed(None, "x", None, bursts.previous))
    assert line.endswith(f"(one line per burst){bursts.suffix()}")


def test_the_line_report_writes_each_event_as_one_line() -> None:
    lines: list[str] = []
    report = LineReport(lines.append, web_hint="try another port")
    report(Listening("127.0.0.1:1"))
    report(WebUINotStarted("127.0.0.1:2", "the address is in use"))
    assert lines == ["listening on 127.0.0.1:1",
                     "web UI not started: cannot listen on 127.0.0.1:2: the address is in use; "
                     "try another port"]


def test_say_prefixes_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    say("listening on 127.0.0.1:1")
    say("web UI on http://x/", "rerun-logging run")
    assert capsys.readouterr().err == ("rerun-logging viewer: listening on 127.0.0.1:1\n"
                                       "rerun-logging run: web UI on http://x/\n")

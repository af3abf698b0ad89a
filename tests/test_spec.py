"""The sink grammar shared by dictConfig, the environment variable and set_sink."""

from __future__ import annotations

import pytest

from rerun_logging.spec import SinkSpec, SinkSpecError, parse_sinks


@pytest.mark.parametrize(
    "text, expected",
    [
        ("off", [SinkSpec("off")]),
        ("memory", [SinkSpec("memory")]),
        ("stdout", [SinkSpec("stdout")]),
        ("save:logs/run.rrd", [SinkSpec("save", path="logs/run.rrd")]),
        ("save:C:/x.rrd", [SinkSpec("save", path="C:/x.rrd")]),
        ("connect", [SinkSpec("connect", host="127.0.0.1", port=7270)]),
        ("spawn", [SinkSpec("spawn", host="127.0.0.1", port=7270)]),
        ("serve", [SinkSpec("serve", host="127.0.0.1", port=7271)]),
        ("connect:viewer.lan:9000", [SinkSpec("connect", host="viewer.lan", port=9000)]),
        ("serve:[::1]:8080", [SinkSpec("serve", host="::1", port=8080)]),
        ("save:a.rrd, stdout", [SinkSpec("save", path="a.rrd"), SinkSpec("stdout")]),
        ("SAVE:x.rrd", [SinkSpec("save", path="x.rrd")]),
    ],
)
def test_parse(text: str, expected: list[SinkSpec]) -> None:
    assert list(parse_sinks(text)) == expected
    assert list(parse_sinks([str(s) for s in expected])) == expected


def test_none_is_memory_and_lists_keep_commas() -> None:
    assert parse_sinks(None) == (SinkSpec("memory"),)
    assert parse_sinks(["save:a,b.rrd"]) == (SinkSpec("save", path="a,b.rrd"),)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty sink specification"),
        ("nope", "unknown sink 'nope'"),
        ("save", "needs a path"),
        ("save:", "needs a path"),
        ("stdout:x", "takes no argument"),
        ("connect:host", "expected HOST:PORT"),
        ("connect:host:http", "bad port 'http'"),
        ("connect:host:70000", "port 70000 out of range"),
        ("connect::7270", "missing host"),
        ("connect:::1:7270", "expected HOST:PORT"),
        ("serve:[::1:7271", "write IPv6 as [ADDR]:PORT"),
        ("off,save:x.rrd", "'off' cannot be combined"),
    ],
)
def test_errors_name_the_value(text: str, message: str) -> None:
    with pytest.raises(SinkSpecError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_sinks(text)


def test_a_defaulted_port_is_told_apart_without_changing_equality_or_text() -> None:
    (default,) = parse_sinks("serve")
    (given,) = parse_sinks("serve:127.0.0.1:7271")
    assert not default.port_given and given.port_given
    assert default == given and hash(default) == hash(given)
    assert str(default) == str(given) == "serve:127.0.0.1:7271"
    assert SinkSpec("serve", host="127.0.0.1", port=7271).port_given  # built by hand: as written
    assert not parse_sinks("spawn")[0].port_given and parse_sinks("spawn:h:1")[0].port_given

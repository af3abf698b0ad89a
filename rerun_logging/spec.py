"""Sink specifications: the grammar shared by dictConfig, the environment and ``set_sink``.

Pure: parsing only, nothing is opened here. The grammar (also in the README)::

    spec     := one ("," one)*
    one      := NAME [":" ARGUMENT]

    HOST     := a name, an IPv4 address, or an IPv6 address in brackets ("[::1]")

Which names exist and what argument each takes (nothing, a PATH, or HOST:PORT with
a default) is each mode's own business: :class:`rerun_logging.sinks.mode.Mode`,
registered in :data:`rerun_logging.sinks.MODES`. Today::

    off | memory | stdout | save:PATH | (connect | spawn | serve) [":" HOST ":" PORT]
        | otlp [":" URL]
        | rerun [":save:" PATH | ":spawn" [":" PORT] | ":connect" [":" URL] | ":serve" [":" PORT]]

PORT 0 (any free port) is allowed for ``serve`` only; the URL it prints names the port.
A ``serve`` without an address uses 127.0.0.1:7271 and, when 7271 is taken, a free
port (said once); a port written in the spec is kept (:attr:`SinkSpec.port_given`).

``off`` stands alone and turns the handler into a no-op. A PATH that contains a comma
cannot be written in a comma-separated string: pass a list (dictConfig, ``set_sink``)
instead. ``RERUN_LOGGING_SINK`` overrides the configured sink; a bad value is reported
once on stderr and the configured sink is kept.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence, Union

ENV_VAR = "RERUN_LOGGING_SINK"
DEFAULT_HOST = "127.0.0.1"
# Our defaults never collide with the Rerun viewer's (9876 for the SDK's streams, 9090 for its
# web viewer) nor with OTLP's (4317 gRPC, 4318 HTTP): one machine runs all three at once.
DEFAULT_TCP_PORT = 7270
DEFAULT_WEB_PORT = 7271
SinkConfig = Union[str, Sequence[str], None]


class SinkSpecError(ValueError):
    """A sink specification that does not parse; the message names the value."""


class MissingExtra(SinkSpecError, ImportError):
    """A sink was asked for whose optional extra cannot be imported; one line names it.

    Both a :class:`SinkSpecError` (it is refused where the handler is configured, as a
    bad spec is) and an ``ImportError`` (``name`` is the module that failed).
    Subclasses set :attr:`sink` and :attr:`extra`.
    """

    sink: ClassVar[str] = ""
    extra: ClassVar[str] = ""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(
            f"the {self.sink} sink needs the {self.extra} extra: pip install '{self.extra}' "
            f"({type(cause).__name__}: {cause})"
        )
        self.name = getattr(cause, "name", None)


@dataclass(frozen=True)
class SinkSpec:
    """One parsed sink: its mode and, by mode, a path or a host and port."""

    mode: str
    path: str | None = None
    host: str | None = None
    port: int | None = None
    port_given: bool = field(default=True, compare=False, repr=False)
    """Whether the port was written in the spec (``serve:HOST:PORT``) rather than
    defaulted (``serve``). A defaulted port that is taken falls back to a free one
    where the mode allows it (``serve``); a given one is kept, and its failure said.
    Not part of equality or of ``str()``: ``serve`` and ``serve:127.0.0.1:7271`` name
    the same sink."""

    def __str__(self) -> str:
        if self.path is not None:
            return f"{self.mode}:{self.path}"
        if self.host is not None:
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"{self.mode}:{host}:{self.port}"
        return self.mode


MEMORY = SinkSpec("memory")
OFF = SinkSpec("off")


def parse_sinks(config: SinkConfig) -> tuple[SinkSpec, ...]:
    """Parse a spec string (comma-separated) or a list of specs; None means memory."""
    if config is None:
        return (MEMORY,)
    if isinstance(config, str):
        parts = [p.strip() for p in config.split(",")] if config.strip() else []
    else:
        parts = [str(p).strip() for p in config]
    if not parts:
        raise SinkSpecError(f"empty sink specification {config!r}; expected {grammar()}")
    specs = tuple(parse_one(p) for p in parts)
    if len(specs) > 1:
        for spec in specs:
            if _modes()[spec.mode].alone:
                raise SinkSpecError(f"{str(spec)!r} cannot be combined with other sinks in {config!r}")
    return specs


def parse_one(text: str) -> SinkSpec:
    """Parse one sink, e.g. ``save:logs/app.rlg`` or ``connect:[::1]:7270``."""
    name, sep, rest = text.partition(":")
    mode = _modes().get(name.strip().lower())
    if mode is None:
        raise SinkSpecError(f"unknown sink {text!r}; expected one of {grammar()}")
    return mode.parse(text, rest if sep else None)


def grammar() -> str:
    """Every mode as it is written: ``off, memory, ..., save:PATH, connect[:HOST:PORT]...``."""
    return ", ".join(mode.grammar for mode in _modes().values())


def _modes() -> dict[str, Any]:
    # The registry imports every sink module, and each of them imports this module:
    # looked up when parsing (on the app's thread), not when this module loads.
    from .sinks import MODES

    return MODES


def host_port(text: str, rest: str, allow_any: bool = False) -> tuple[str, int]:
    """HOST and PORT of ``rest``; port 0 (any free port) only when ``allow_any``."""
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or not tail.startswith(":"):
            raise SinkSpecError(f"bad address in {text!r}; write IPv6 as [ADDR]:PORT")
        port_text = tail[1:]
    else:
        host, colon, port_text = rest.rpartition(":")
        if not colon or ":" in host:
            raise SinkSpecError(f"bad address in {text!r}; expected HOST:PORT")
    if not host:
        raise SinkSpecError(f"missing host in {text!r}; expected HOST:PORT")
    try:
        port = int(port_text)
    except ValueError:
        raise SinkSpecError(f"bad port {port_text!r} in {text!r}") from None
    if not (0 if allow_any else 1) <= port < 65536:
        raise SinkSpecError(f"port {port} out of range in {text!r}")
    return host, port


def env_sinks() -> tuple[SinkSpec, ...] | None:
    """The sinks ``RERUN_LOGGING_SINK`` asks for, or None when unset or bad."""
    return _parse_env(os.environ.get(ENV_VAR))


@functools.lru_cache(maxsize=8)
def _parse_env(value: str | None) -> tuple[SinkSpec, ...] | None:
    """Parsed once per distinct value, so a bad value is reported once."""
    if value is None or not value.strip():
        return None
    try:
        specs = parse_sinks(value)
    except SinkSpecError as error:
        sys.stderr.write(
            f"rerun-logging: ignoring {ENV_VAR}={value!r}: {error}; "
            "keeping the configured sink\n"
        )
        return None
    return specs

"""What a sink mode is: the one class every other module asks instead of comparing names.

A :class:`Mode` carries everything about one mode: its grammar (the argument it
takes, its default port), what :func:`rerun_logging.sinks.prepare` imports for it
on the configuring thread, how it opens, what it does before the flusher starts,
which file it claims for the family (children save beside it), and what ``run``
hands the processes of a run. Each mode's class lives beside its sink (``save`` in
:mod:`.file`, ``connect`` in :mod:`.tcp`...); :data:`rerun_logging.sinks.MODES`
registers them. Adding a sink is one module (its sink and its mode) and one line
there.

Pure: nothing here opens anything; :meth:`Mode.open` is where a mode's sink is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..spec import DEFAULT_HOST, SinkSpec, SinkSpecError, host_port

if TYPE_CHECKING:
    from . import SinkOptions
    from .base import Sink


class Mode:
    """One sink mode; subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    argument: ClassVar[str] = ""
    """What the spec takes after ``NAME:``: "" nothing, "path" a path, "address" HOST:PORT."""
    default_port: ClassVar[int] = 0
    """The port of an ``address`` mode written without one."""
    any_port: ClassVar[bool] = False
    """Whether port 0 (any free port, named once bound) is allowed."""
    alone: ClassVar[bool] = False
    """Whether the mode cannot be combined with others (``off``)."""
    modules: ClassVar[tuple[str, ...]] = ()
    """What the mode's sink imports after its first write: imported by ``prepare()`` on
    the configuring thread, never on a flusher (a fork may happen during an import)."""
    writes_here: ClassVar[bool] = False
    """Whether the sink writes from this process alone (a file, stdout): a handler
    closed before its first record still writes an empty, valid stream there."""
    top_process_only: ClassVar[bool] = False
    """Under ``rerun-logging run``: only the top process gets it (the others' streams
    would interleave into it)."""
    serves_page: ClassVar[bool] = False
    """Whether the mode serves the web viewer (``run`` serves it once, from the runner)."""

    @property
    def grammar(self) -> str:
        """How the mode is written, for error messages and ``--help``."""
        if self.argument == "path":
            return f"{self.name}:PATH"
        if self.argument == "address":
            return f"{self.name}[:HOST:PORT]"
        return self.name

    def parse(self, text: str, argument: str | None) -> SinkSpec:
        """The spec for ``text`` (``argument``: what followed the first colon, or None)."""
        if self.argument == "path":
            if not argument or not argument.strip():
                raise SinkSpecError(f"sink {text!r} needs a path: {self.grammar}")
            return SinkSpec(self.name, path=argument.strip())
        if self.argument == "address":
            if argument is None:
                return SinkSpec(self.name, host=DEFAULT_HOST, port=self.default_port, port_given=False)
            host, port = host_port(text, argument, allow_any=self.any_port)
            return SinkSpec(self.name, host=host, port=port)
        if argument is not None:
            raise SinkSpecError(f"sink {self.name!r} takes no argument, got {text!r}")
        return SinkSpec(self.name)

    def open(self, spec: SinkSpec, options: SinkOptions) -> Sink:
        """The sink for ``spec`` (nothing is opened until it first writes); on the flusher."""
        raise NotImplementedError(f"sink {spec} cannot be opened")

    def before_start(self, spec: SinkSpec) -> None:
        """What the sink does on the app's thread before the flusher starts."""

    def saved_file(self, spec: SinkSpec) -> str | None:
        """The file the sink writes, which the family announces to children (or None)."""
        return None

    def for_run(self, spec: SinkSpec) -> str:
        """The spec ``run`` hands the processes of the run (their working directory may differ)."""
        return str(spec)


class Off(Mode):
    """``off``: the handler is a no-op (it checks this before doing any work)."""

    name = "off"
    alone = True

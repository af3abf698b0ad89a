"""The flusher: a handler's background half, the stdlib ``QueueListener``'s job.

One thread per handler takes captured records from the :class:`~.handoff.Handoff`
every ``flush_interval`` (or when a batch is ready), turns each batch into one
frame and gives it to every sink. It owns what only it changes:

- the sinks (:attr:`Flusher.sinks`: a tuple, replaced whole when ``set_sink``
  switches them, so that ``url`` and ``stats`` read a snapshot without a lock);
- the stream: its header and the records' sequence numbers;
- the answers to the caller's requests (flush, switch, stop), which callers make
  through :meth:`Flusher.request_flush`, :meth:`Flusher.request_switch` and
  :meth:`Flusher.request_stop` and wait for under its condition.

The flusher never imports (see :mod:`rerun_logging.sinks`) and never raises: a
step that fails unexpectedly is reported in one line and the loop goes on.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from . import exits, format, own_threads
from ._version import __version__
from .capture import Captured, Columns, extras_fit, messages_as_read, record_batch
from .format import RecordingInfo
from .handoff import Handoff
from .sinks import Sink, SinkOptions, open_sink
from .spec import OFF, SinkSpec


@dataclass(frozen=True)
class FlusherSettings:
    """What a flusher needs of its handler's configuration, fixed when its thread starts.

    Not earlier: ``dictConfig``'s ``"."`` sets attributes after the handler is built
    (``retryFactor``, as ``SocketHandler``'s)."""

    application_id: str
    recording_id: str
    entity_prefix: str
    flush_interval: float
    batch_size: int
    flush_timeout: float
    sink_options: SinkOptions


def sink_drop_reason(name: str) -> str:
    """The ``dropped_by_reason`` key of the records sink ``name`` lost."""
    return f"{name} could not deliver them"


class Flusher:
    """The background half of one handler: its thread, its sinks, its stream."""

    def __init__(
        self,
        settings: FlusherSettings,
        handoff: Handoff,
        specs: tuple[SinkSpec, ...],
        inherited: Sequence[Sink] = (),
    ) -> None:
        self.settings = settings
        self.handoff = handoff
        self.specs = specs
        """The specs of the sinks opened (or to open, before the thread starts)."""
        self.sinks: tuple[Sink, ...] = ()
        """The open sinks; replaced whole, on the flusher thread only."""
        self.retired_drops: dict[str, int] = {}
        """Records that sinks replaced by ``set_sink`` had lost, by reason."""
        self._inherited = tuple(inherited)
        """A forked child's copies of its parent's sinks, reopened on its thread."""
        self.thread: threading.Thread | None = None
        self.ident = -1
        self._cond = threading.Condition(threading.RLock())
        self._flush_requested = 0
        self._flush_done = 0
        self._flush_deadline = 0.0
        self._flush_delivered = True
        self._switch_to: tuple[SinkSpec, ...] | None = None
        self._stopping = False
        self._stop_deadline = 0.0
        self._next_seq = 0
        self._header = b""

    # --- the caller's requests ------------------------------------------------------

    def start(self, name: str, settings: FlusherSettings) -> threading.Thread:
        """Start the thread (once), with the handler's ``settings`` as they are now."""
        self.settings = settings
        thread = threading.Thread(target=self._run, name=name, daemon=True)
        exits.flusher_runs(+1)  # counted from before it runs to after its last write
        try:
            thread.start()
        except BaseException:
            exits.flusher_runs(-1)
            raise
        self.ident = thread.ident or -1
        self.thread = thread
        return thread

    def request_flush(self, deadline: float) -> int:
        """Ask for everything queued so far to be delivered by ``deadline``; a ticket to wait on."""
        with self._cond:
            self._flush_requested += 1
            self._flush_deadline = max(self._flush_deadline, deadline)
            ticket = self._flush_requested
        self.handoff.wake.set()
        return ticket

    def wait_flushed(self, ticket: int, timeout: float) -> bool:
        """Wait at most ``timeout`` for the pass that answers ``ticket``; whether all was delivered."""
        thread = self.thread
        with self._cond:
            done = self._cond.wait_for(
                lambda: self._flush_done >= ticket or thread is None or not thread.is_alive(),
                timeout,
            )
            return bool(done) and self._flush_delivered

    def request_switch(self, specs: tuple[SinkSpec, ...]) -> None:
        """Ask for the sinks of ``specs`` in place of the open ones (done on the next pass)."""
        with self._cond:
            self._switch_to = specs

    def request_stop(self, deadline: float) -> None:
        """Ask the thread to end every stream, delivering until ``deadline``, and stop."""
        with self._cond:
            self._stopping = True
            self._stop_deadline = deadline
        self.handoff.wake.set()

    @property
    def inherits(self) -> bool:
        """Whether this is a forked child's flusher that reopens its parent's sinks."""
        return bool(self._inherited)

    @property
    def switching_to(self) -> tuple[SinkSpec, ...] | None:
        """The specs of a switch asked for and not done yet."""
        return self._switch_to

    def finish_without_thread(self, settings: FlusherSettings, deadline: float) -> None:
        """Open the sinks, write the header and END (a close before any record), on the caller."""
        self.settings = settings
        self._stop_deadline = deadline
        self._open(self._new_sinks(self.specs))
        self._end_streams()

    # --- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        self.ident = threading.get_ident()
        own_threads.enter()
        try:
            self._loop()
        finally:
            own_threads.leave()
            exits.flusher_runs(-1)

    def _loop(self) -> None:
        inherited, self._inherited = self._inherited, ()
        self._open([s.after_fork() for s in inherited] or self._new_sinks(self.specs))
        wake = self.handoff.wake
        while True:
            wake.wait(self.settings.flush_interval)
            wake.clear()
            self._guarded(exits.deliver_missed_signal)
            full_only, self.handoff.batch_ready = self.handoff.batch_ready, False
            with self._cond:
                wanted, change, stopping = self._flush_requested, self._switch_to, self._stopping
            full_only = full_only and not stopping and change is None and wanted <= self._flush_done
            due = 0 if full_only else len(self.handoff.queue)
            self._guarded(lambda: self._drain(due))
            if change is not None:
                self._guarded(lambda: self._switch(change))
            self._guarded(lambda: self._tend(wanted))
            delivered = not self.handoff.queue and all(s.pending == 0 for s in self.sinks)
            with self._cond:
                self._flush_done = wanted
                self._flush_delivered = delivered
                self._cond.notify_all()
            if stopping:
                break
        self._guarded(self._end_streams)

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run one step; an unexpected error is reported, never fatal."""
        try:
            step()
        except Exception as error:
            sys.stderr.write(f"rerun-logging: internal error in the flusher: {error!r}\n")

    def _each_sink(self, what: str, sinks: Sequence[Sink], step: Callable[[Sink], None]) -> None:
        """``step(sink)`` for every sink; one sink's unexpected error never costs the others
        their turn (their END at close, above all). Reported; what the sink still holds
        stays pending (the close says how many were not delivered)."""
        for sink in sinks:
            try:
                step(sink)
            except Exception as error:
                sys.stderr.write(
                    f"rerun-logging: internal error in the flusher ({sink.name} {what}): {error!r}\n"
                )

    def _tend(self, wanted_flush: int) -> None:
        """Let sinks run their timers; on a flush request, let them deliver."""
        now = time.monotonic()
        self._each_sink("poll", self.sinks, lambda sink: sink.poll(now))
        if wanted_flush > self._flush_done:
            self._each_sink("flush", self.sinks, lambda sink: sink.flush(self._flush_deadline))

    # --- sinks -------------------------------------------------------------------------

    def _new_sinks(self, specs: Sequence[SinkSpec]) -> list[Sink]:
        """Sink objects for ``specs``; they do no I/O until their first write."""
        options = self.settings.sink_options
        return [open_sink(spec, options) for spec in specs if spec != OFF]

    def _open(self, sinks: list[Sink]) -> tuple[Sink, ...]:
        header = self._stream_header()
        for sink in sinks:
            sink.start(header)
        self.sinks = tuple(sinks)
        return self.sinks

    def _switch(self, specs: tuple[SinkSpec, ...]) -> None:
        old = self.sinks
        new = self._open(self._new_sinks(specs))
        for buffer in old:
            evicted, frames = buffer.take()
            if evicted:
                drop = format.encode_frame(
                    format.dropped_message(evicted, "buffer full: oldest records dropped")
                )
                for sink in new:
                    sink.write(drop, 0)
            for frame, records in frames:
                for sink in new:
                    sink.write(frame, records)
        end = format.encode_frame(format.end_message())
        deadline = time.monotonic() + self.settings.flush_timeout
        self._each_sink("close", old, lambda sink: sink.close(end, deadline))
        for sink in old:
            self.handoff.count_drop(f"{sink.name} replaced before it delivered them", sink.pending)
        worst = max(old, key=lambda s: s.dropped, default=None)
        if worst is not None and worst.dropped:
            reason = sink_drop_reason(worst.name)
            self.retired_drops = {
                **self.retired_drops, reason: self.retired_drops.get(reason, 0) + worst.dropped
            }
        with self._cond:
            self.specs = specs
            if self._switch_to is specs:
                self._switch_to = None

    # --- the stream --------------------------------------------------------------------

    def _stream_header(self) -> bytes:
        if not self._header:
            settings = self.settings
            self._header = format.stream_header(
                RecordingInfo(
                    application_id=settings.application_id,
                    recording_id=settings.recording_id,
                    start_time_ns=time.time_ns(),
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    python_version=sys.version.split()[0],
                    package_version=__version__,
                    entity_prefix=settings.entity_prefix,
                )
            )
        return self._header

    def _drain(self, due: int | None = None) -> None:
        """Write the queue's full batches, and at least its first ``due`` records (None:
        everything, until it is empty, as at the end).

        What the app logs while the flusher writes is taken as full batches only; the
        rest waits for the next wake-up (a full batch, or ``flush_interval``). Taking
        it as it came would cut a small batch at every turn while the app logs fast
        (writes release the GIL), each costing a batch's fixed work. Woken by a full
        batch (``Handoff.batch_ready``), ``due`` is 0."""
        handoff = self.handoff
        queue, batch_size = handoff.queue, self.settings.batch_size
        if not queue:
            return
        while len(queue) >= batch_size or (queue and (due is None or due > 0)):
            batch = handoff.take(batch_size)
            if due is not None:
                due -= len(batch)
            if batch:
                self._write_frame(batch)
        handoff.quiet_until = time.time() + self.settings.flush_interval

    def _write_frame(self, batch: list[Captured]) -> None:
        sinks = self.sinks
        compress = any(sink.stores_frames for sink in sinks)
        readers = any(sink.reads_columns for sink in sinks)
        only_readers = bool(sinks) and all(sink.reads_columns for sink in sinks)
        for payload, records, columns in self._encode(batch, readers, only_readers):
            reports = self.handoff.take_reports()
            frame = b""
            try:
                if payload is not None:
                    frame = format.encode_frame(_reports_message(reports) + payload, compress)
            except ValueError as error:
                self.handoff.count_drop(f"batch could not be framed: {error}", records)
                continue
            read = None
            if columns is not None:
                read = [format.Dropped(n, reason) for reason, n in reports.items()]
                read.append(columns)
            self._write_to_sinks(frame, records, read)

    def _write_to_sinks(
        self, frame: bytes, records: int, read: list[format.RecordColumns | format.Dropped] | None = None
    ) -> None:
        """Give ``frame`` to every sink (``read``, its messages as a reader reads them,
        to those that take them); one sink's failure never costs the others."""
        for sink in self.sinks:
            try:
                if read is not None and sink.reads_columns:
                    sink.write_columns(read, records)
                else:
                    sink.write(frame, records)
            except Exception as error:
                sink.write_failed(records, error)

    def _drop_reports(self) -> bytes:
        return _reports_message(self.handoff.take_reports())

    def _encode(
        self, batch: list[Captured], read: bool = False, only_read: bool = False
    ) -> list[tuple[bytes | None, int, format.RecordColumns | None]]:
        """Payloads for ``batch``: split when too large, bad records isolated and dropped.

        With ``read``, each comes with its records as a reader reads them
        (``format.columns_as_read``), where they pack exactly; else None (the sinks
        that read them decode the frame). With ``only_read`` too (no sink takes
        frames), a batch that packs exactly gets no payload (None): it is never packed."""
        columns = None
        try:
            prefix = self.settings.entity_prefix
            encoded = record_batch(batch, self._next_seq, prefix, framed=not only_read)
            if only_read and encoded.args_exact and extras_fit(encoded):
                columns = _as_read(encoded)  # exact, told without packing anything
            extras = None
            if columns is None:
                if not encoded.framed:  # a frame after all, and it needs the args packed
                    encoded = record_batch(batch, self._next_seq, prefix)
                extras = format.pack_extras_exactly(encoded.extras)
                if read and extras is not None and encoded.args_exact:
                    columns = _as_read(encoded)
            if only_read and columns is not None:
                self._next_seq += len(batch)
                return [(None, len(batch), columns)]
            if extras is None:
                extras = format.pack_extras_capped(encoded.extras)
            payload = format.records_message(encoded.columns, extras)
        except Exception as error:
            if len(batch) == 1:
                self.handoff.count_drop(f"record could not be encoded: {error!r}", 1)
                return []
            payload = b""
        if payload and (len(payload) <= format.TARGET_PAYLOAD_SIZE or len(batch) == 1):
            self._next_seq += len(batch)
            return [(payload, len(batch), columns)]
        half = len(batch) // 2
        return self._encode(batch[:half], read, only_read) + self._encode(batch[half:], read, only_read)

    def _end_streams(self) -> None:
        self._drain()
        end = format.encode_frame(self._drop_reports() + format.end_message())
        deadline = self._stop_deadline or time.monotonic() + self.settings.flush_timeout
        self._each_sink("close", self.sinks, lambda sink: sink.close(end, deadline))


def _reports_message(reports: dict[str, int]) -> bytes:
    """The DROPPED messages of ``reports`` (reason: count), packed one after another."""
    if not reports:
        return b""
    return b"".join(format.dropped_message(n, reason) for reason, n in reports.items())


def _as_read(encoded: Columns) -> format.RecordColumns | None:
    """``encoded`` as a reader reads it, or None where that fails (never expected:
    the sinks that read columns then decode the frame instead)."""
    try:
        columns, messages = encoded.columns, messages_as_read(encoded)
        if messages is not columns["msg"]:
            columns = {**columns, "msg": messages}  # the frame's own columns stay as they are
        return format.columns_as_read(columns, encoded.args, encoded.extras, encoded.times)
    except Exception:
        return None

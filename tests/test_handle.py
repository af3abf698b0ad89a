"""``RerunHandler.handle``'s C half (``_speedups.Handle``) against the Python ``handle``.

The C half takes the common record in one call and hands every other to the Python
``handle`` before doing anything. Each test here runs the same records through a
handler whose ``handle`` is the C one and through one whose ``handle`` is the Python
one, and asks for the same outcome: the same records in the file, the same drops, the
same errors reported, the same return values.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

from rerun_logging import RerunHandler, own_threads
from rerun_logging.format import Record
from rerun_logging.speedups import SPEEDUPS

from .conftest import read_messages

pytestmark = pytest.mark.skipif(
    SPEEDUPS is None and not os.environ.get("RERUN_LOGGING_REQUIRE_SPEEDUPS"),
    reason="rerun_logging._speedups is not built here",
)


class PythonHandled(RerunHandler):
    """A RerunHandler whose ``handle`` is the Python one the C half stands for."""

    handle = RerunHandler.handle.__wrapped__  # type: ignore[attr-defined]


KINDS: dict[str, type[RerunHandler]] = {"c": RerunHandler, "python": PythonHandled}


def test_the_handlers_handle_is_the_c_one() -> None:
    assert type(RerunHandler.handle).__name__ == "Handle"
    assert RerunHandler.handle.__doc__ == RerunHandler.handle.__wrapped__.__doc__  # type: ignore[attr-defined]
    handler = RerunHandler("off")
    assert handler.handle.__self__ is handler  # bound, as a method is


class Odd(logging.LogRecord):
    """A LogRecord subclass: the C half leaves it to the Python handle."""

    def getMessage(self) -> str:  # noqa: N802 (logging's name)
        return "odd " + super().getMessage()


def varied_records(logger: logging.Logger) -> list[logging.LogRecord]:
    """Records of every shape the C half takes or hands on."""
    def made(msg: Any, args: Any = (), exc_info: Any = None, extra: Any = None, level: int = logging.INFO) -> logging.LogRecord:
        return logger.makeRecord(logger.name, level, __file__, 10, msg, args, exc_info, extra=extra)

    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    records = [
        made("plain"),
        made("request %d done", (7,), extra={"user": "u", "n": 7}),
        made("a %s b %r", ("x", 1.5), extra={"flag": True, "none": None}),
        made("failed", exc_info=exc_info, level=logging.ERROR),
        made({"event": "dict message", "n": 1}),
        made("mutable args %s", ([1, 2],)),
        made("mutable extra", extra={"items": [1, 2], "map": {"k": "v"}}),
        made("mapping args %(a)s", ({"a": 1},)),
        made(12345),
    ]
    odd = Odd(logger.name, logging.WARNING, __file__, 11, "subclass %s", ("record",), None)
    records.append(odd)
    return records


def outcome(kind: str, tmp_path: Path, logger: logging.Logger, step: Callable[[RerunHandler], Any]) -> tuple[list[Record], Any]:
    """The records a ``kind`` handler wrote after ``step(handler)``, and what ``step`` returned."""
    path = tmp_path / f"{kind}.rlg"
    handler = KINDS[kind](f"save:{path}", flush_interval=60)
    logger.addHandler(handler)
    handler.start()  # the C half applies once the flusher runs
    try:
        returned = step(handler)
    finally:
        logger.removeHandler(handler)
        handler.close()
    records = [m for m in read_messages(path) if isinstance(m, Record)]
    return records, returned


def untimed(records: list[Record]) -> list[Record]:
    """``records`` without their times (the same calls, made twice, log at other times)."""
    return [dataclasses.replace(r, time_ns=0) for r in records]


@pytest.mark.parametrize("kind", ["c", "python"])
def test_handle_returns_what_logging_handle_returns(tmp_path: Path, logger: logging.Logger, kind: str) -> None:
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "m %d", (1,), None)
    _, returned = outcome(kind, tmp_path, logger, lambda h: h.handle(record))
    assert returned is (record if sys.version_info >= (3, 12) else True)


def test_the_c_handle_writes_what_the_python_handle_writes(tmp_path: Path, logger: logging.Logger) -> None:
    records = varied_records(logger)
    written = {}
    for kind in KINDS:
        written[kind], returned = outcome(kind, tmp_path, logger, lambda h: [h.handle(r) for r in records])
        assert all(returned)
    assert len(written["c"]) == len(records)
    assert written["c"] == written["python"]
    by_message = {r.message: r for r in written["c"]}
    assert by_message["request 7 done"].extras == {"user": "u", "n": 7}
    assert by_message["failed"].exception is not None and "boom" in by_message["failed"].exception.traceback
    assert by_message["odd subclass record"].level == logging.WARNING
    assert by_message["mutable extra"].extras == {"items": [1, 2], "map": {"k": "v"}}


def test_the_c_handle_keeps_filters_formatters_and_the_queue_bound(tmp_path: Path, logger: logging.Logger) -> None:
    def step(handler: RerunHandler) -> None:
        handler.addFilter(lambda r: "secret" not in r.getMessage())
        for i in range(5):
            logger.info("kept %d", i)
            logger.info("secret %d", i)
        handler.filters.clear()
        handler.setFormatter(logging.Formatter("fmt:%(message)s"))
        logger.info("formatted")
        handler.setFormatter(None)  # type: ignore[arg-type]
        logger.info("plain again %s", "x", extra={"k": 1})

    written = {kind: untimed(outcome(kind, tmp_path, logger, step)[0]) for kind in KINDS}
    assert written["c"] == written["python"]
    assert [r.message for r in written["c"]] == [
        *(f"kept {i}" for i in range(5)), "fmt:formatted", "plain again x",
    ]


@pytest.mark.parametrize("kind", ["c", "python"])
def test_records_of_the_packages_own_threads_are_not_taken(tmp_path: Path, logger: logging.Logger, kind: str) -> None:
    def log_from_own_thread() -> None:
        own_threads.enter()
        try:
            logger.info("from an own thread")
        finally:
            own_threads.leave()

    def step(handler: RerunHandler) -> None:
        thread = threading.Thread(target=log_from_own_thread)
        thread.start()
        thread.join()
        logger.info("from the app")

    written, _ = outcome(kind, tmp_path, logger, step)
    assert [r.message for r in written] == ["from the app"]


@pytest.mark.parametrize("kind", ["c", "python"])
def test_after_close_and_when_off_nothing_is_taken(tmp_path: Path, logger: logging.Logger, kind: str) -> None:
    handler = KINDS[kind](f"save:{tmp_path / 'closed.rlg'}")
    logger.addHandler(handler)
    logger.info("before")
    handler.close()
    logger.info("after")
    assert handler.stats.dropped_by_reason == {"logged after close": 1}
    off = KINDS[kind]("off")
    assert off.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 1, "m", (), None)) is False
    assert off.stats.emitted == 0


class Broken:
    """A queue whose ``append`` fails (no deque: the C half's append fails too)."""

    def __len__(self) -> int:
        return 0

    def append(self, item: object) -> None:
        raise OSError("the queue broke")


@pytest.mark.parametrize("kind", ["c", "python"])
def test_an_error_while_handling_goes_to_handle_error_and_never_raises(tmp_path: Path, logger: logging.Logger, kind: str) -> None:
    reported: list[tuple[logging.LogRecord, BaseException | None]] = []

    def step(handler: RerunHandler) -> Any:
        handler.handleError = lambda record: reported.append((record, sys.exc_info()[1]))  # type: ignore[method-assign]
        queue, handler._queue = handler._queue, Broken()  # type: ignore[assignment]
        try:
            record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "lost %d", (1,), None)
            return record, handler.handle(record)
        finally:
            handler._queue = queue

    _, (record, returned) = outcome(kind, tmp_path, logger, step)
    assert returned is (record if sys.version_info >= (3, 12) else True)
    assert [r for r, _ in reported] == [record]
    assert isinstance(reported[0][1], (OSError, TypeError))


@pytest.mark.parametrize("kind", ["c", "python"])
def test_recursion_error_is_raised_as_emit_raises_it(tmp_path: Path, logger: logging.Logger, kind: str) -> None:
    def step(handler: RerunHandler) -> None:
        def deep(queue: object) -> None:
            raise RecursionError("too deep")

        handler._on_batch_ready = deep  # type: ignore[method-assign]
        handler.batch_size = 1
        with pytest.raises(RecursionError):
            handler.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 1, "m", (), None))

    outcome(kind, tmp_path, logger, step)


@pytest.mark.parametrize("where", ["subclass", "class", "instance"])
def test_an_emit_of_its_own_is_called(tmp_path: Path, logger: logging.Logger, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A subclass's ``emit``, or one patched onto the class or the handler (a test's mock),
    is called: the C half leaves such a handler to the Python ``handle``."""
    seen: list[str] = []

    def counting(self: RerunHandler, record: logging.LogRecord) -> None:
        seen.append(record.getMessage())
        RerunHandler.emit(self, record)

    cls: type[RerunHandler] = RerunHandler
    if where == "subclass":
        cls = type("Counting", (RerunHandler,), {"emit": counting})
        assert cls.handle is RerunHandler.handle  # the C one: it sees the other emit
    elif where == "class":
        original = RerunHandler.emit

        def patched(self: RerunHandler, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())
            original(self, record)

        monkeypatch.setattr(RerunHandler, "emit", patched)
    handler = cls(f"save:{tmp_path / 'own.rlg'}")
    if where == "instance":
        monkeypatch.setattr(handler, "emit", lambda record: counting(handler, record))
    logger.addHandler(handler)
    for i in range(3):
        logger.info("n %d", i)
    monkeypatch.undo()
    handler.close()
    assert seen == ["n 0", "n 1", "n 2"]
    assert handler.stats.sinks[0].written == 3

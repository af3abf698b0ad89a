"""The C half of :func:`rerun_logging.capture.capture`'s fast path (optional)."""

import logging
from typing import Any

def configure(
    record_type: type[logging.LogRecord], message_key: str, standard_names: tuple[str, ...],
    key_names: tuple[str, ...],
) -> None: ...
def plain_capture(record: logging.LogRecord) -> dict[str, Any] | None: ...
def middles(states: list[dict[str, Any]]) -> list[dict[str, Any]] | None: ...
def batch_rows(
    states: list[dict[str, Any]],
) -> tuple[
    list[str | None], list[int], list[int], list[int], list[tuple[Any, ...]], list[int],
    list[int], list[Any],
] | None: ...
def rows_fit(rows: list[dict[Any, Any] | tuple[Any, ...] | None], cap: int) -> bool: ...
def extra_columns(
    extras: list[dict[Any, Any] | None],
) -> list[tuple[Any, list[Any], str | None]] | None: ...

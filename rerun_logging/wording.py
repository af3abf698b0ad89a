"""Counts and sizes in the lines people read: ``1 file``, ``2 files``, ``64 MiB``. Pure.

Every report line, error and summary that names a count or a size goes through
these, so none says ``1 files`` or ``65536 KiB``.
"""

from __future__ import annotations

_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 record``, ``0 records``, ``2 records`` (``plural`` for nouns not made with ``s``)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def binary_size(size: int) -> str:
    """``size`` bytes in the largest binary unit that keeps it at least 1: ``64 MiB``,
    ``1.5 KiB``, ``1 byte``, ``512 bytes`` (one decimal where it is not whole)."""
    if abs(size) < 1024:
        return counted(size, "byte")
    value = float(size)
    unit = 0
    while abs(value) >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    text = f"{value:.1f}".removesuffix(".0")
    return f"{text} {_UNITS[unit]}"


__all__ = ["binary_size", "counted"]

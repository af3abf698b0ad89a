"""Value policy: what any Python value becomes in a recording, and within which caps.

Writers (the handler's capture step, the flusher) and readers (the viewer) apply
the same rules: :func:`plain_value` turns objects into data as python-json-logger
shows them, :func:`sanitize` and :func:`truncate_text` keep them within the caps of
:mod:`~rerun_logging.format.schema`, :func:`render` makes a message from its
template and args as ``LogRecord.getMessage`` would, and the ``pack_*`` helpers
pack the ``extra`` and ``args`` columns within those caps. :func:`entity_path_for`
names a logger's entity. Pure functions: no I/O, no state but a cached encoder.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Sequence

import msgpack

from .schema import (
    MAX_DEFERRED_CONVERSIONS,
    MAX_DEFERRED_WIDTH,
    MAX_EXTRAS_BYTES,
    MAX_FIELD_CHARS,
    TRUNCATION_MARK,
)


def new_packer() -> msgpack.Packer:
    """A packer that keeps lone surrogates and turns unknown types into text."""
    return msgpack.Packer(default=plain_value, unicode_errors="surrogatepass")


def _exact_packer() -> msgpack.Packer:
    """A packer that refuses what it cannot carry as it is (no ``default``: an int
    past 64 bits raises rather than becoming its text), for the columns that must
    read back exactly (:func:`pack_extras_exactly`, :func:`pack_args_exactly`)."""
    return msgpack.Packer(unicode_errors="surrogatepass")


def packb(value: Any) -> bytes:
    """Pack one value with the format's conventions. Not thread-safe per packer."""
    return new_packer().pack(value)


def plain_value(value: Any) -> Any:
    """A value msgpack can carry, made from any Python object; never raises.

    Follows python-json-logger's ``JsonEncoder.default`` (datetimes as ISO text,
    enums as their value, dataclasses as dicts, everything else as ``str``), so a
    field reads the same here as in a user's JSON logs. Integers beyond 64 bits
    become their decimal text.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    try:
        converted = _json_encoder().default(value)
    except Exception:
        converted = None
    if converted is not None and converted is not value:
        return converted
    try:
        return str(value)
    except Exception:
        return safe_repr(value)


@functools.lru_cache(maxsize=1)
def _json_encoder() -> Any:
    from pythonjsonlogger.json import JsonEncoder

    return JsonEncoder()


def truncate_text(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """``text`` cut to ``limit`` characters, keeping head and tail, marked visibly."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    mark = TRUNCATION_MARK.format(cut)
    head = (limit * 2) // 3
    return text[:head] + mark + text[len(text) - (limit - head) :]


def sanitize(value: Any, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> Any:
    """``value`` made packable and within the field caps, recursively.

    Cycles become ``"[...]"`` / ``"{...}"`` as ``repr`` shows them; nesting deeper than
    32 levels becomes text; strings and bytes longer than MAX_FIELD_CHARS are cut.
    """
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, str):
        return truncate_text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return data if len(data) <= MAX_FIELD_CHARS else truncate_text(repr(data))
    if _depth >= 32:
        return truncate_text(safe_repr(value))
    if isinstance(value, (list, tuple, dict)):
        if id(value) in _seen:
            return "{...}" if isinstance(value, dict) else "[...]"
        seen = _seen | {id(value)}
        if isinstance(value, dict):
            return {
                _sanitize_key(k): sanitize(v, _depth + 1, seen) for k, v in value.items()
            }
        return [sanitize(v, _depth + 1, seen) for v in value]
    return sanitize(plain_value(value), _depth + 1, _seen)


def _sanitize_key(key: Any) -> Any:
    if isinstance(key, str):
        return truncate_text(key)
    if isinstance(key, (int, float, bool)) and sanitize(key) is key:
        return key
    return truncate_text(safe_repr(key))


_CONVERSION = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.?)")
"""A ``%`` conversion: its width and precision (for :func:`deferrable_template`)."""


def deferrable_template(template: Any) -> bool:
    """Whether readers may render the messages of ``template`` from their args.

    The rule that bounds a reader's work per byte received: a ``str`` template within
    MAX_FIELD_CHARS, with at most MAX_DEFERRED_CONVERSIONS conversions, no ``*``
    width or precision and none above MAX_DEFERRED_WIDTH. Then a rendered message is
    at most a few times the size of its template and args, so a crafted template
    (``%999999999d``) cannot make a reader build a huge string. Writers render any
    other message themselves.
    """
    if type(template) is not str or len(template) > MAX_FIELD_CHARS:
        return False
    if "%" not in template:
        return True
    specs = _CONVERSION.findall(template)
    if len(specs) > MAX_DEFERRED_CONVERSIONS:
        return False
    for width, precision, _ in specs:
        for number in (width, precision):
            if number == "*" or (number and int(number) > MAX_DEFERRED_WIDTH):
                return False
    return True


def render_message(template: str | None, args: Any) -> str:
    """The message of a record stored without one: ``template % args``, as
    ``LogRecord.getMessage`` makes it (capped at MAX_FIELD_CHARS); never raises.

    A template that :func:`deferrable_template` refuses (only a crafted stream has
    one) is not rendered: the text says so and shows the template and args.
    """
    if template is None:
        return ""
    if args and not deferrable_template(template):
        return truncate_text(
            f"<message not rendered: its template is not one a writer defers> "
            f"msg={safe_repr(template)} args={safe_repr(args)}"
        )
    return render(template, args)


def render(template: str, args: Any) -> str:
    """``template % args`` as ``LogRecord.getMessage`` makes it (capped), or why it could
    not; never raises. The one rendering of writers (for what they do not defer) and readers."""
    try:
        return truncate_text(template % args if args else template)
    except Exception as error:
        return unformattable(template, args, error)


def unformattable(msg: Any, args: Any, error: Exception) -> str:
    """The message of a record whose ``msg % args`` raised ``error``: what went wrong,
    with the template and args (capped)."""
    return truncate_text(
        f"<message could not be formatted: {type(error).__name__}: {error}> "
        f"msg={safe_repr(msg)} args={safe_repr(args)}"
    )


def safe_repr(value: Any) -> str:
    """``repr(value)``, or a placeholder naming the type when ``__repr__`` raises."""
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def safe_str(value: Any) -> str:
    """``str(value)``, falling back to :func:`safe_repr` when ``__str__`` raises."""
    try:
        return str(value)
    except Exception:
        return safe_repr(value)


def pack_extras(extras: Sequence[dict[str, Any] | None]) -> bytes:
    """The packed ``extra`` column, every value packable and within the caps.

    Fast path: the column packed as it is, when every record's extras pack within
    the cap (:func:`_pack_rows_within`); otherwise record by record, each cut to the
    caps where it must be.
    """
    packed = pack_extras_exactly(extras)
    return packed if packed is not None else pack_extras_capped(extras)


def pack_extras_exactly(extras: Sequence[dict[str, Any] | None]) -> bytes | None:
    """The packed ``extra`` column when every row packs as it is within the cap (a
    reader reads back exactly ``extras``), else None."""
    return _pack_rows_within(extras, MAX_FIELD_CHARS)


def pack_extras_capped(extras: Sequence[dict[str, Any] | None]) -> bytes:
    """The packed ``extra`` column record by record, each cut to the caps where it must be."""
    return packb([_capped_extras(x) for x in extras])


def _pack_rows_within(rows: Sequence[Any], cap: int) -> bytes | None:
    """``rows`` packed as one list when each row packs as it is within ``cap`` bytes,
    else None (a row too large, or one msgpack cannot carry as it is).

    The list is packed whole first: when it fits ``cap``, no row can be larger. A
    larger column (4,096 records of 16 bytes each reach 64 KiB) is measured row by
    row with one packer, rather than sent down the slow path whole: a batch of
    ordinary records must not pay for caps none of them comes near.
    """
    packer = _exact_packer()
    try:
        packed = packer.pack(list(rows))
        if len(packed) <= cap:
            return packed
        largest = max(map(len, map(packer.pack, rows)), default=0)
    except (ValueError, TypeError, OverflowError, UnicodeError):
        return None
    return packed if largest <= cap else None


class Packed(bytes):
    """A column that is already packed: :func:`records_message` writes it as it is."""


def pack_args(args: Sequence[tuple[Any, ...] | dict[Any, Any] | None]) -> Packed:
    """The packed ``args`` column, each row packable and within the caps (like extras)."""
    exact = pack_args_exactly(args)
    return exact if exact is not None else pack_args_capped(args)


def pack_args_exactly(args: Sequence[tuple[Any, ...] | dict[Any, Any] | None]) -> Packed | None:
    """The packed ``args`` column when every row reads back as it is (nothing capped or
    made plain), else None: only then may a writer leave messages for readers to render."""
    packed = _pack_rows_within(args, MAX_FIELD_CHARS)
    return Packed(packed) if packed is not None else None


def pack_args_capped(args: Sequence[tuple[Any, ...] | dict[Any, Any] | None]) -> Packed:
    """The packed ``args`` column row by row, each row cut to the caps where it must be."""
    return Packed(packb([_capped_args(a) for a in args]))


def _capped_args(args: tuple[Any, ...] | dict[Any, Any] | None) -> Any:
    if not args:
        return None
    try:
        if len(packb(args)) <= MAX_FIELD_CHARS:
            return args
    except (ValueError, TypeError, OverflowError, UnicodeError):
        pass
    clean = sanitize(args)
    if len(packb(clean)) <= MAX_EXTRAS_BYTES:
        return clean
    return [truncate_text(safe_repr(args))]


def _capped_extras(extras: dict[str, Any] | None) -> dict[str, Any] | None:
    if not extras:
        return extras
    try:
        if len(packb(extras)) <= MAX_FIELD_CHARS:
            return extras
    except (ValueError, TypeError, OverflowError, UnicodeError):
        pass
    return fit_extras(extras)


def fit_extras(extras: dict[Any, Any]) -> dict[Any, Any]:
    """``extras`` within the caps: each entry sanitized, entries kept in order while the
    packed total fits MAX_EXTRAS_BYTES, then a ``rerun.truncated`` note saying how many
    were left out. The one rule for writers (the handler) and readers (the viewer)."""
    clean: dict[Any, Any] = {}
    size = 0
    items = list(extras.items())
    for index, (key, value) in enumerate(items):
        entry = {_sanitize_key(key): sanitize(value)}
        entry_size = len(packb(entry))
        if size + entry_size > MAX_EXTRAS_BYTES:
            clean["rerun.truncated"] = (
                f"{len(items) - index} of {len(items)} extras left out: "
                f"record over {MAX_EXTRAS_BYTES} bytes"
            )
            break
        clean.update(entry)
        size += entry_size
    return clean


def entity_path_for(logger_name: str, prefix: str = "") -> str:
    """The entity path of a logger: dots become slashes, under ``prefix``.

    The root logger is ``root`` (its name in ``logging``), so it keeps one stable
    path whatever the prefix.
    """
    path = logger_name.replace(".", "/") if logger_name else "root"
    return f"{prefix.strip('/')}/{path}" if prefix.strip("/") else path

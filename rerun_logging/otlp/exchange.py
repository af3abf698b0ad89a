"""One HTTP/1.1 request and its response, as bytes in and bytes out. Sans-I/O.

:class:`Exchange` holds the request's bytes (head and body, built by
:func:`request_head`) and reads the response as it comes: the shell moves bytes
between it and a non-blocking socket, so no call waits on the receiver::

    data_to_send()      the bytes still to send (a view; empty when all went out)
    data_sent(count)    the socket took ``count`` of them
    receive_data(data)  bytes the receiver sent; b"" when it closed the connection
    response            the :class:`Response`, once whole (None until then)

The response is read by the standard library's :class:`http.client.HTTPResponse`
(status line, headers, ``Content-Length``, chunked bodies, ``100 Continue``) over the
bytes received so far; it is whole once that parse needs no more bytes. A response
that cannot be read raises :class:`ProtocolError` (a ``ConnectionError``).
"""

from __future__ import annotations

import http.client
import io
from dataclasses import dataclass
from typing import Iterable

from .config import Endpoint

MAX_RESPONSE = 1024 * 1024
"""Bytes of a response kept at most (an OTLP answer is a few bytes)."""
CONTENT_TYPE = "application/x-protobuf"

_NOTHING = memoryview(b"")


class ProtocolError(ConnectionError):
    """The receiver's answer is not an HTTP response we can read. (Sans-I/O)"""


@dataclass(frozen=True)
class Response:
    """A whole HTTP response: status, reason, headers (names lowercased), body."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    will_close: bool
    """Whether the receiver closes the connection after it (no keep-alive)."""


def request_head(
    endpoint: Endpoint, length: int, headers: Iterable[tuple[str, str]] = (),
    encoding: str | None = None, user_agent: str = "rerun-logging",
) -> bytes:
    """The head of a ``POST`` of a ``length``-byte protobuf body to ``endpoint``.

    ``headers`` are extra (name, value) pairs, already checked (no CR, LF or other
    control characters: :func:`~.config.parse_headers`); ``encoding`` names the
    body's ``Content-Encoding`` (``gzip``), None when it is sent as is.
    """
    lines = [
        f"POST {endpoint.target} HTTP/1.1",
        f"Host: {endpoint.authority}",
        f"User-Agent: {user_agent}",
        f"Content-Type: {CONTENT_TYPE}",
        f"Content-Length: {length}",
    ]
    if encoding:
        lines.append(f"Content-Encoding: {encoding}")
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class Exchange:
    """One request (``request``: head and body) and the response it gets."""

    def __init__(self, request: bytes, max_response: int = MAX_RESPONSE) -> None:
        self._out = memoryview(request)
        self._in = bytearray()
        self._closed = False
        self.max_response = max_response
        self.response: Response | None = None

    @property
    def received(self) -> int:
        """Bytes of the response received so far."""
        return len(self._in)

    def data_to_send(self) -> memoryview:
        """What is still to send (empty once all of it went, or once the response came)."""
        return _NOTHING if self.response is not None else self._out

    def data_sent(self, count: int) -> None:
        """The socket took the first ``count`` bytes of :meth:`data_to_send`."""
        self._out = self._out[count:]

    def receive_data(self, data: bytes) -> None:
        """Take bytes of the response; ``b""`` says the receiver closed the connection.

        Sets :attr:`response` once it is whole; raises :class:`ProtocolError` when
        it cannot be read, is larger than ``max_response``, or the connection closed
        before it was whole.
        """
        if self.response is not None:
            return
        if data:
            self._in += data
            if len(self._in) > self.max_response:
                raise ProtocolError(f"the response is larger than {self.max_response} bytes")
        else:
            self._closed = True
        self.response = parse_response(bytes(self._in), self._closed)


class _Received:
    """What :class:`http.client.HTTPResponse` reads from: the bytes received so far."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str, *args: object, **kwargs: object) -> io.BytesIO:
        return io.BytesIO(self._data)


def parse_response(data: bytes, closed: bool) -> Response | None:
    """The response ``data`` holds, or None while it needs more bytes.

    ``closed``: the connection ended after ``data`` (a body without a length ends
    there; a response cut short is a :class:`ProtocolError`).
    """
    if b"\r\n\r\n" not in data and b"\n\n" not in data:
        if closed:
            raise ProtocolError(
                "the connection closed before a response" if not data
                else "the connection closed inside the response's head"
            )
        return None
    response = http.client.HTTPResponse(_Received(data), method="POST")  # type: ignore[arg-type]
    try:
        response.begin()
        if response.length is None and not response.chunked and not closed:
            return None  # the body ends when the connection does
        body = response.read()
        if response.chunked and not closed and not data.endswith((b"\r\n\r\n", b"\n\n")):
            return None  # the blank line that ends the trailer is still to come
    except (http.client.IncompleteRead, http.client.RemoteDisconnected):
        if closed:
            raise ProtocolError("the connection closed inside the response") from None
        return None
    except (http.client.HTTPException, ValueError) as error:
        raise ProtocolError(f"not an HTTP response ({type(error).__name__}: {error})") from None
    headers = {name.lower(): value for name, value in response.getheaders()}
    return Response(response.status, response.reason, headers, body, bool(response.will_close))

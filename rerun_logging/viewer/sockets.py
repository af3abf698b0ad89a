"""The viewer's socket helpers: listen, name addresses, close gracefully after a refusal.

Plain functions over the standard library's sockets and asyncio's streams; the
viewer (:mod:`.server`) and the serve sink's port for child processes use them.
"""

from __future__ import annotations

import asyncio
import os
import socket

try:
    import resource  # imported here: out of descriptors, an extension module cannot be opened
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

CHUNK_SIZE = 256 * 1024
"""Most bytes read from a source at once."""
LINGER_SECONDS = 1.0
LINGER_BYTES = 1024 * 1024
"""After a refusal, how long and how much the viewer reads (and discards) before
closing, so the peer receives the REFUSED message instead of a reset."""


def listening_socket(host: str, port: int) -> socket.socket:
    """A non-blocking socket listening on the first address ``host`` resolves to.

    One socket, so ``--port 0`` picks one port even when a name resolves to
    several addresses. SO_REUSEADDR lets a restarted viewer take its port back
    from connections in TIME_WAIT; it never lets two viewers listen on one port.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def is_loopback(host: str | None) -> bool:
    """Whether binding ``host`` keeps a server reachable from this machine only."""
    import ipaddress

    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def format_address(address: object) -> str:
    """``host:port``, or ``[v6host]:port``, from a socket address tuple."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = str(address[0]), address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address)


def peer_name(address: object) -> str:
    """How report lines name a peer: ``127.0.0.1:5555``."""
    return format_address(address) if address else "<unknown peer>"


def peer_host(address: object) -> str:
    """A peer's address without its port: ``127.0.0.1`` (connections are shared per host)."""
    if isinstance(address, tuple) and address:
        return str(address[0])
    return "<unknown peer>"


def descriptor_limit() -> int | None:
    """The process's soft RLIMIT_NOFILE (what a report of running out of descriptors
    names); None when unlimited or unknown."""
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


async def linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close gracefully after a refusal: send FIN, then read and discard for a moment.

    Closing a socket with unread data makes the kernel send a reset, and a reset
    can destroy the REFUSED message before the peer reads it. Returns after
    :data:`LINGER_SECONDS` or :data:`LINGER_BYTES`, or when the peer closes; the
    caller closes ``writer``.
    """
    try:
        if writer.can_write_eof():
            writer.write_eof()
        loop = asyncio.get_running_loop()
        until = loop.time() + LINGER_SECONDS
        discarded = 0
        while discarded < LINGER_BYTES:
            chunk = await asyncio.wait_for(reader.read(CHUNK_SIZE), max(until - loop.time(), 0.0))
            if not chunk:
                return
            discarded += len(chunk)
    except (asyncio.TimeoutError, ConnectionError, OSError):
        pass

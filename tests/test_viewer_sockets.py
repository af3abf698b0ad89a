"""The viewer's socket helpers (``viewer/sockets.py``), on real loopback sockets."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from rerun_logging.viewer.sockets import (
    LINGER_SECONDS, descriptor_limit, format_address, linger, listening_socket, peer_host, peer_name,
)

TIMEOUT = 10.0


def test_a_listening_socket_takes_one_free_port_and_refuses_a_second_listener() -> None:
    sock = listening_socket("127.0.0.1", 0)
    try:
        host, port = sock.getsockname()[:2]
        assert host == "127.0.0.1" and port > 0 and not sock.getblocking()
        with socket.create_connection((host, port), timeout=TIMEOUT):
            pass
        with pytest.raises(OSError) as taken:
            listening_socket("127.0.0.1", port)
        assert taken.value.errno == errno.EADDRINUSE
    finally:
        sock.close()


def test_a_name_that_resolves_to_several_addresses_gets_one_socket() -> None:
    sock = listening_socket("localhost", 0)
    try:
        assert sock.getsockname()[0] in ("127.0.0.1", "::1")
    finally:
        sock.close()


def test_addresses_and_peers_are_named_for_report_lines() -> None:
    assert format_address(("127.0.0.1", 9876)) == "127.0.0.1:9876"
    assert format_address(("::1", 9876, 0, 0)) == "[::1]:9876"
    assert format_address("/run/viewer.sock") == "/run/viewer.sock"
    assert peer_name(("10.0.0.2", 5555)) == "10.0.0.2:5555"
    assert peer_name(None) == peer_host(None) == "<unknown peer>"
    assert peer_host(("10.0.0.2", 5555)) == "10.0.0.2"


def test_the_descriptor_limit_is_the_soft_rlimit() -> None:
    resource = pytest.importorskip("resource")
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert descriptor_limit() == (None if soft == resource.RLIM_INFINITY else soft)


def test_linger_lets_the_peer_read_the_last_reply_although_it_sent_unread_bytes() -> None:
    async def main() -> None:
        done = asyncio.Event()

        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"REFUSED: go away")
            await linger(reader, writer)
            writer.close()
            done.set()

        sock = listening_socket("127.0.0.1", 0)
        server = await asyncio.start_server(refuse, sock=sock)
        async with server:
            reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            writer.write(b"x" * 500_000)  # never read by the server's handler
            reply = await asyncio.wait_for(reader.read(), TIMEOUT)  # up to the viewer's FIN
            assert reply == b"REFUSED: go away"
            writer.close()
            await asyncio.wait_for(done.wait(), TIMEOUT)

    asyncio.run(main())


def test_linger_is_bounded_when_the_peer_stays_open_and_silent() -> None:
    async def main() -> float:
        done = asyncio.Event()
        took: list[float] = []

        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            loop = asyncio.get_running_loop()
            start = loop.time()
            await linger(reader, writer)
            took.append(loop.time() - start)
            writer.close()
            done.set()

        sock = listening_socket("127.0.0.1", 0)
        server = await asyncio.start_server(refuse, sock=sock)
        async with server:
            reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            await asyncio.wait_for(done.wait(), TIMEOUT)  # the peer is still open
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
            writer.close()
        return took[0]

    assert asyncio.run(main()) < LINGER_SECONDS + 2

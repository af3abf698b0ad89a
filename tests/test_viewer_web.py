"""The web shell: real HTTP and a real WebSocket client against 127.0.0.1, port 0."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from typing import Any, Awaitable, Callable

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from rerun_logging.format import Record
from rerun_logging.viewer.feed import FeedClient, StreamSummary, read_message
from rerun_logging.viewer.web import WebServer, content_security_policy, is_loopback, serve_web

RECORD = Record(
    seq=0, time_ns=1_764_000_000_000_000_000, level=30, level_name="WARNING",
    entity_path="app", logger="app", message="<img src=x onerror=alert(1)>",
)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 20))


async def started(**options: Any) -> WebServer:
    return await serve_web("127.0.0.1", 0, **options)


async def http_get(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP/1.1 GET: status, headers (lower-case names), body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    for name, value in (headers or {}).items():
        lines = [line for line in lines if not line.lower().startswith(name.lower() + ":")]
        lines.append(f"{name}: {value}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, body


def assert_security_headers(headers: dict[str, str], port: int | None = None) -> None:
    policy = headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    if port is not None:
        assert policy == content_security_policy(f"ws://127.0.0.1:{port}")
        assert f"connect-src 'self' ws://127.0.0.1:{port};" in policy
    assert headers["x-content-type-options"] == "nosniff"


def test_page_is_served_with_security_headers() -> None:
    async def test() -> None:
        server = await started()
        try:
            for path in ("/", "/index.html"):
                status, headers, body = await http_get(server.port, path)
                assert status == 200
                assert headers["content-type"] == "text/html; charset=utf-8"
                assert int(headers["content-length"]) == len(body)
                assert b"rerun-logging" in body
                assert_security_headers(headers, server.port)
            status, headers, _ = await http_get(server.port, "/missing.js")
            assert status == 404
            assert_security_headers(headers)
        finally:
            await server.close()

    run(test)


@pytest.mark.parametrize(
    "path",
    ["/../web.py", "/%2e%2e/web.py", "/static/../../feed.py", "/..%2fweb.py", "/.hidden",
     "/..\\web.py", "/%2e%2e%5cweb.py", "//etc/passwd"],
)
def test_path_traversal_is_refused(path: str) -> None:
    async def test() -> None:
        server = await started()
        try:
            status, headers, body = await http_get(server.port, path)
            assert status == 404, body
            assert b"import" not in body
            assert_security_headers(headers)
        finally:
            await server.close()

    run(test)


def test_foreign_origin_is_refused() -> None:
    async def test() -> None:
        server = await started()
        try:
            for origin in ("http://evil.example", f"http://evil.example:{server.port}",
                           "http://127.0.0.1:1", "null"):
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(f"ws://127.0.0.1:{server.port}/ws", origin=origin):
                        pass
                assert refused.value.response.status_code == 403
                assert_security_headers(
                    {k.lower(): v for k, v in refused.value.response.headers.raw_items()}
                )
            assert server.clients == 0
        finally:
            await server.close()

    run(test)


def test_dns_rebinding_host_is_refused() -> None:
    async def test() -> None:
        server = await started()
        try:
            status, headers, _ = await http_get(
                server.port, "/", {"Host": f"evil.example:{server.port}"}
            )
            assert status == 403
            assert headers["content-security-policy"] == content_security_policy(None)
        finally:
            await server.close()

    run(test)


def test_own_origin_receives_initial_and_pushed_batches() -> None:
    def initial(feed: FeedClient) -> None:
        feed.recordings([StreamSummary("rec", "app", "host", 1, 0, "live")])

    async def test() -> None:
        server = await started(feed_source=initial)
        try:
            for name in ("127.0.0.1", "localhost"):
                origin = f"http://{name}:{server.port}"
                async with connect(f"ws://127.0.0.1:{server.port}/ws", origin=origin) as ws:
                    assert ws.response is not None and ws.response.status_code == 101
                    assert_security_headers(
                        {k.lower(): v for k, v in ws.response.headers.raw_items()}, server.port
                    )
                    first = read_message(await ws.recv())
                    assert first["type"] == "recordings"
                    assert first["recordings"][0]["recording"] == "rec"
                    server.push_records("rec", [RECORD], pid=1)
                    batch = read_message(await ws.recv())
                    assert batch["type"] == "records"
                    assert batch["message"] == [RECORD.message]
                    assert "strings" not in batch  # a binary batch: it names its own strings
                    assert (batch["level_name"], batch["logger"], batch["path"]) == (
                        [RECORD.level_name], [RECORD.logger], [RECORD.path])
                    server.push_recordings([])
                    assert read_message(await ws.recv()) == {"type": "recordings", "recordings": []}
        finally:
            await server.close()

    run(test)


@pytest.mark.parametrize("compress", [True, None, False])
def test_the_feed_is_deflated_beyond_loopback_and_reads_back_whole(compress: bool | None) -> None:
    """permessage-deflate (websockets' server windows, 4 KiB, at level 1) is offered when
    asked, and by default only beyond loopback (see "Compression" in web.py): a batch of
    many records crosses, deflated or not, and reads back as the feed made it."""
    async def test() -> None:
        server = await started(compress=compress)
        try:
            assert server.compress is bool(compress)  # bound to loopback: off unless asked
            origin = f"http://127.0.0.1:{server.port}"
            async with connect(f"ws://127.0.0.1:{server.port}/ws", origin=origin) as ws:
                assert ws.response is not None
                extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
                if compress:
                    assert "permessage-deflate" in extensions and "server_max_window_bits=12" in extensions
                else:
                    assert extensions == ""
                records = [dataclasses.replace(RECORD, seq=i, message=f"m{i} " * 20) for i in range(2000)]
                server.push_records("rec", records)
                batch = read_message(await ws.recv())
                assert batch["type"] == "records" and batch["message"] == [r.message for r in records]
        finally:
            await server.close()

    run(test)


def test_missing_origin_is_allowed_on_loopback_only() -> None:
    async def test() -> None:
        server = await started()
        try:
            async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
                await asyncio.sleep(0)
                assert server.clients == 1
                server.push_records("rec", [RECORD])
                assert read_message(await ws.recv())["type"] == "records"
        finally:
            await server.close()

    run(test)


def test_token_required_when_asked() -> None:
    async def test() -> None:
        server = await started(require_token=True)
        try:
            token = server.token
            assert token and len(token) >= 24
            assert f"?token={token}" in server.url
            assert (await http_get(server.port, "/"))[0] == 403
            assert (await http_get(server.port, "/?token=wrong"))[0] == 403
            assert (await http_get(server.port, "/index.html"))[0] == 403
            status, headers, _ = await http_get(server.port, f"/?token={token}")
            assert status == 200
            assert headers["referrer-policy"] == "no-referrer"
            origin = f"http://127.0.0.1:{server.port}"
            for query in ("", "?token=", "?token=wrong"):
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(f"ws://127.0.0.1:{server.port}/ws{query}", origin=origin):
                        pass
                assert refused.value.response.status_code == 403
            async with connect(f"ws://127.0.0.1:{server.port}/ws?token={token}", origin=origin) as ws:
                server.push_records("rec", [RECORD])
                assert read_message(await ws.recv())["type"] == "records"
        finally:
            await server.close()

    run(test)


def test_beyond_loopback_needs_a_token_and_a_same_origin() -> None:
    """The checks a server bound to 0.0.0.0 makes, tested without binding it."""
    server = WebServer("0.0.0.0", 9090)
    assert not server.loopback and server.require_token and server.token
    assert server._origin_allowed("http://myhost:9090", "myhost:9090")
    assert not server._origin_allowed(None, "myhost:9090")
    assert not server._origin_allowed("http://evil.example", "myhost:9090")
    assert not server._token_ok("")
    assert server._token_ok(f"token={server.token}")
    loopback = WebServer("127.0.0.1", 9090)
    assert loopback.token is None and loopback._origin_allowed(None, None)
    assert is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("example.com")


def test_close_stops_clients_and_frees_the_port() -> None:
    async def test() -> None:
        server = await started()
        port = server.port
        ws = await connect(f"ws://127.0.0.1:{port}/ws")
        await server.close()
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert server.clients == 0
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)

    run(test)


def test_pages_beyond_the_limit_get_503_and_the_others_are_kept() -> None:
    async def test() -> None:
        server = await started(max_clients=2)
        try:
            first = await connect(f"ws://127.0.0.1:{server.port}/ws")
            second = await connect(f"ws://127.0.0.1:{server.port}/ws")
            with pytest.raises(InvalidStatus) as refused:
                await connect(f"ws://127.0.0.1:{server.port}/ws")
            assert refused.value.response.status_code == 503
            await first.close()
            await asyncio.wait_for(_until(lambda: server.clients == 1), 5)
            third = await connect(f"ws://127.0.0.1:{server.port}/ws")
            await third.close()
            await second.close()
        finally:
            await server.close()

    run(test)


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_a_frozen_page_costs_a_count_once_it_fell_behind() -> None:
    """A page that never reads: once its queue overflowed, the server stops encoding
    for it (``wants_records`` is false, so frames are not even decoded) and counts."""
    from rerun_logging.format import Record

    records = [Record(seq=i, time_ns=i, level=20, level_name="INFO", entity_path="a", logger="a",
                      message="m" * 200) for i in range(1000)]

    async def test() -> None:
        server = await started(max_bytes=500_000)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port, limit=1024)
            writer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            writer.write(
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            assert (await reader.readexactly(12)) == b"HTTP/1.1 101"  # then never read again
            await asyncio.wait_for(_until(lambda: server.clients == 1), 5)
            pushed = 0
            while server.wants_records:
                server.push_records("r", records)
                pushed += 1
                await asyncio.sleep(0.01)
                assert pushed < 1000, "the page never counted as behind"
            (client,) = server._clients
            for _ in range(5):
                server.skip_records(len(records))
            assert client.feed.full and client.feed.missed_records >= 5 * len(records)
            writer.close()
        finally:
            await server.close()

    run(test)


async def raw_request(port: int, text: str) -> tuple[int, dict[str, str], bytes]:
    """Send ``text`` as it is (duplicate headers and all); status, headers, body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(text.encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def test_a_duplicate_host_or_origin_is_a_400_with_the_security_headers() -> None:
    async def test() -> None:
        lines: list[str] = []
        server = await started(report=lines.append)
        host = f"127.0.0.1:{server.port}"
        try:
            for request in (
                f"GET / HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\n\r\n",
                f"GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n"
                "Origin: http://evil.example\r\n\r\n",
            ):
                status, headers, body = await raw_request(server.port, request)
                assert status == 400 and b"Bad Request: more than one" in body
                assert headers["content-security-policy"] == content_security_policy(
                    None if "Host: evil" in request else f"ws://{host}"
                )
                assert headers["x-content-type-options"] == "nosniff"
                assert headers["cache-control"] == "no-store"
            assert len(lines) == 1 and "with 400: 2 Host headers (one line per burst)" in lines[0]
            assert (await http_get(server.port, "/"))[0] == 200
        finally:
            await server.close()

    run(test)


def test_an_unexpected_error_answering_a_request_is_one_line_and_a_500_with_our_headers() -> None:
    async def test() -> None:
        lines: list[str] = []
        server = await started(report=lines.append)

        def broken(path: str) -> None:
            raise RuntimeError("a bug")

        server._static_file = broken  # type: ignore[method-assign]
        try:
            status, headers, _ = await http_get(server.port, "/app.js")
            assert status == 500
            assert_security_headers(headers, server.port)
            assert lines == [lines[0]] and "500: internal error: RuntimeError('a bug')" in lines[0]
        finally:
            await server.close()

    run(test)


def test_connections_waiting_for_their_request_are_capped_the_oldest_closed() -> None:
    async def test() -> None:
        lines: list[str] = []
        server = await started(report=lines.append, max_opening=3)
        idle = []
        try:
            for _ in range(3):
                idle.append(await asyncio.open_connection("127.0.0.1", server.port))
            await asyncio.wait_for(_until(lambda: server.opening == 3), 5)
            idle.append(await asyncio.open_connection("127.0.0.1", server.port))
            try:
                assert await asyncio.wait_for(idle[0][0].read(), 5) == b""  # the oldest: closed
            except ConnectionResetError:
                pass
            await asyncio.wait_for(_until(lambda: server.opening == 3), 5)
            status, headers, _ = await http_get(server.port, "/")  # a page still gets in
            assert status == 200
            assert_security_headers(headers, server.port)
            assert len(lines) == 1 and lines[0].startswith(
                "web UI: 3 connections were waiting to send their request; closed the oldest ("
            )
        finally:
            for _, writer in idle:
                writer.close()
            await server.close()

    run(test)


def test_a_request_that_never_completes_times_out() -> None:
    async def test() -> None:
        server = await started(open_timeout=0.3)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never the blank line
            try:
                assert await asyncio.wait_for(reader.read(), 5) == b""
            except ConnectionResetError:
                pass
            await asyncio.wait_for(_until(lambda: server.opening == 0), 5)
            writer.close()
        finally:
            await server.close()

    run(test)

"""One HTTP/1.1 exchange as bytes (rerun_logging.otlp.exchange): sans-I/O, fed at every split."""

from __future__ import annotations

import pytest

from rerun_logging.otlp.config import parse_endpoint
from rerun_logging.otlp.exchange import Exchange, ProtocolError, parse_response, request_head

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 3\r\n\r\nabc"
CHUNKED = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"
)
UNTIL_CLOSE = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nno such thing"


def test_the_request_head() -> None:
    endpoint = parse_endpoint("http://[::1]:4318/v1/logs?tenant=a", "test")
    head = request_head(endpoint, 12, [("api-key", "s3cret")], "gzip", "rerun-logging/1")
    assert head == (
        b"POST /v1/logs?tenant=a HTTP/1.1\r\nHost: [::1]:4318\r\nUser-Agent: rerun-logging/1\r\n"
        b"Content-Type: application/x-protobuf\r\nContent-Length: 12\r\n"
        b"Content-Encoding: gzip\r\napi-key: s3cret\r\n\r\n"
    )


@pytest.mark.parametrize("raw, status, body, will_close", [
    (OK, 200, b"abc", False), (CHUNKED, 503, b"abc", False), (UNTIL_CLOSE, 400, b"no such thing", True),
])
def test_a_response_is_whole_only_at_its_end_whatever_the_split(
    raw: bytes, status: int, body: bytes, will_close: bool,
) -> None:
    closes = raw is UNTIL_CLOSE
    for split in range(len(raw)):
        exchange = Exchange(b"request")
        if split:  # b"" would say the connection closed
            exchange.receive_data(raw[:split])
        assert exchange.response is None, split
        exchange.receive_data(raw[split:])
        if closes:
            assert exchange.response is None
            exchange.receive_data(b"")
        response = exchange.response
        assert response is not None, split
        assert (response.status, response.body, response.will_close) == (status, body, will_close)


def test_headers_are_lowercased() -> None:
    response = parse_response(CHUNKED, closed=False)
    assert response is not None and response.headers["retry-after"] == "2"


def test_continue_is_skipped() -> None:
    exchange = Exchange(b"r")
    exchange.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert exchange.response is None
    exchange.receive_data(OK)
    assert exchange.response is not None and exchange.response.status == 200


def test_sending_goes_on_where_the_socket_stopped() -> None:
    exchange = Exchange(b"0123456789")
    exchange.data_sent(4)
    assert bytes(exchange.data_to_send()) == b"456789"
    exchange.data_sent(6)
    assert not exchange.data_to_send()


def test_an_early_answer_stops_the_sending() -> None:
    exchange = Exchange(b"a large body not yet sent")
    exchange.receive_data(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert exchange.response is not None and exchange.response.will_close
    assert not exchange.data_to_send()


@pytest.mark.parametrize("raw, why", [
    (b"", "before a response"),
    (b"HTTP/1.1 200 OK\r\nContent-Le", "inside the response's head"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", "inside the response"),
])
def test_a_connection_closed_early_is_a_protocol_error(raw: bytes, why: str) -> None:
    exchange = Exchange(b"r")
    if raw:
        exchange.receive_data(raw)
    with pytest.raises(ProtocolError, match=why):
        exchange.receive_data(b"")


def test_garbage_and_huge_answers_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match="not an HTTP response"):
        Exchange(b"r").receive_data(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    exchange = Exchange(b"r", max_response=100)
    with pytest.raises(ProtocolError, match="larger than 100"):
        exchange.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + b"x" * 100)
    assert isinstance(ProtocolError("x"), ConnectionError)

"""The OTEL_* variables as the otlp sink's settings (rerun_logging.otlp.config): pure, from dicts."""

from __future__ import annotations

import pytest

from rerun_logging.otlp.config import (
    DEFAULT_TIMEOUT,
    OtlpConfigError,
    endpoint_from,
    parse_endpoint,
    parse_headers,
    parse_resource_attributes,
    settings_from,
)
from rerun_logging.spec import SinkSpecError

LOGS = "OTEL_EXPORTER_OTLP_LOGS_"
ANY = "OTEL_EXPORTER_OTLP_"


# --- the endpoint -----------------------------------------------------------------------


def test_the_default_endpoint_is_loopback_4318() -> None:
    endpoint = endpoint_from({})
    assert endpoint.url == "http://127.0.0.1:4318/v1/logs"
    assert (endpoint.host, endpoint.port, endpoint.target) == ("127.0.0.1", 4318, "/v1/logs")


@pytest.mark.parametrize("base, url", [
    ("http://collector:4318", "http://collector:4318/v1/logs"),
    ("http://collector:4318/", "http://collector:4318/v1/logs"),
    ("https://otlp.example.com/otlp", "https://otlp.example.com/otlp/v1/logs"),
    ("https://otlp.example.com/otlp/", "https://otlp.example.com/otlp/v1/logs"),
])
def test_the_generic_endpoint_gets_v1_logs_appended(base: str, url: str) -> None:
    assert endpoint_from({f"{ANY}ENDPOINT": base}).url == url


def test_the_logs_endpoint_is_used_as_is_and_wins() -> None:
    environ = {f"{ANY}ENDPOINT": "http://generic:4318", f"{LOGS}ENDPOINT": "http://logs:9999/custom"}
    endpoint = endpoint_from(environ)
    assert endpoint.url == "http://logs:9999/custom"
    assert endpoint.target == "/custom"
    bare = endpoint_from({f"{LOGS}ENDPOINT": "http://logs:9999"})
    assert bare.target == "/"  # no path: the root, not /v1/logs


def test_the_spec_url_wins_over_the_variables() -> None:
    environ = {f"{LOGS}ENDPOINT": "http://logs:1/x", f"{ANY}ENDPOINT": "http://any:2"}
    assert endpoint_from(environ, "http://given:3/v1/logs?tenant=a").target == "/v1/logs?tenant=a"


def test_an_empty_variable_is_unset() -> None:
    environ = {f"{LOGS}ENDPOINT": " ", f"{ANY}ENDPOINT": "http://any:2"}
    assert endpoint_from(environ).url == "http://any:2/v1/logs"


def test_endpoint_parts() -> None:
    secure = parse_endpoint("https://otlp.example.com/v1/logs", "test")
    assert (secure.secure, secure.port, secure.authority) == (True, 443, "otlp.example.com")
    ipv6 = parse_endpoint("http://[::1]:4318/v1/logs", "test")
    assert (ipv6.host, ipv6.port, ipv6.authority) == ("::1", 4318, "[::1]:4318")
    plain = parse_endpoint("http://host/v1/logs", "test")
    assert (plain.port, plain.authority) == (80, "host")


@pytest.mark.parametrize("url", [
    "collector:4318", "ftp://host/v1/logs", "http://", "http://host:99999/v1/logs",
    "http://host:port/v1/logs", "http://user:secret@host/v1/logs", "http://host/v1 logs",
])
def test_bad_endpoints_are_refused_at_configuration(url: str) -> None:
    with pytest.raises(OtlpConfigError) as raised:
        endpoint_from({f"{LOGS}ENDPOINT": url})
    assert isinstance(raised.value, SinkSpecError) and isinstance(raised.value, ValueError)
    assert f"{LOGS}ENDPOINT" in str(raised.value)
    assert "secret" not in str(raised.value)


# --- headers ----------------------------------------------------------------------------


def test_headers_are_parsed_as_the_sdk_parses_them() -> None:
    problems: list[str] = []
    headers = parse_headers(
        " API-Key = secret%20value , tenant=a=b,x-empty=,bad item,Host=evil,x-crlf=a%0D%0Ab",
        "H", problems,
    )
    assert headers == [("api-key", "secret value"), ("tenant", "a=b"), ("x-empty", "")]
    assert len(problems) == 3
    assert any("item 4" in p for p in problems)
    assert not any("secret" in p for p in problems)
    assert any("'host'" in p and "sets it" in p for p in problems)
    assert any("'x-crlf'" in p and "control" in p for p in problems)


def test_logs_headers_win_over_the_generic_ones_whole() -> None:
    environ = {f"{ANY}HEADERS": "a=1,b=2", f"{LOGS}HEADERS": "c=3"}
    assert settings_from(environ).headers == (("c", "3"),)
    assert settings_from({f"{ANY}HEADERS": "a=1,b=2"}).headers == (("a", "1"), ("b", "2"))


# --- timeout, compression, protocol, TLS ------------------------------------------------


def test_the_timeout_is_in_milliseconds() -> None:
    assert settings_from({}).timeout == DEFAULT_TIMEOUT == 10.0
    assert settings_from({f"{ANY}TIMEOUT": "2500"}).timeout == 2.5
    assert settings_from({f"{ANY}TIMEOUT": "2500", f"{LOGS}TIMEOUT": "500"}).timeout == 0.5


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf", "nan"])
def test_a_bad_timeout_is_said_and_the_default_kept(value: str) -> None:
    settings = settings_from({f"{LOGS}TIMEOUT": value})
    assert settings.timeout == DEFAULT_TIMEOUT
    assert [p for p in settings.problems if f"{LOGS}TIMEOUT" in p]


def test_compression() -> None:
    assert settings_from({}).compression == "none"
    assert settings_from({f"{ANY}COMPRESSION": " GZIP "}).compression == "gzip"
    assert settings_from({f"{ANY}COMPRESSION": "gzip", f"{LOGS}COMPRESSION": "none"}).compression == "none"
    odd = settings_from({f"{ANY}COMPRESSION": "zstd"})
    assert odd.compression == "none" and "zstd" in odd.problems[0]


def test_a_protocol_other_than_http_protobuf_is_said() -> None:
    assert settings_from({f"{ANY}PROTOCOL": "http/protobuf"}).problems == ()
    grpc = settings_from({f"{ANY}PROTOCOL": "grpc"})
    assert "grpc" in grpc.problems[0] and "http/protobuf" in grpc.problems[0]


def test_tls_files() -> None:
    environ = {
        f"{LOGS}ENDPOINT": "https://otlp.example.com/v1/logs", f"{ANY}CERTIFICATE": "/ca.pem",
        f"{LOGS}CLIENT_CERTIFICATE": "/me.pem", f"{LOGS}CLIENT_KEY": "/me.key",
    }
    settings = settings_from(environ)
    assert (settings.certificate, settings.client_certificate, settings.client_key) == (
        "/ca.pem", "/me.pem", "/me.key",
    )
    assert settings.problems == ()
    plain = settings_from({f"{ANY}CERTIFICATE": "/ca.pem"})
    assert "not https" in plain.problems[0]


# --- the resource -----------------------------------------------------------------------


def test_resource_attributes_are_percent_decoded_strings() -> None:
    problems: list[str] = []
    pairs = parse_resource_attributes(
        "deployment.environment=prod, team = a%2Cb ,broken,=nokey,k8s.pod.name=web-1,team=c",
        problems,
    )
    assert pairs == [("deployment.environment", "prod"), ("team", "c"), ("k8s.pod.name", "web-1")]
    assert len(problems) == 2


def test_otel_service_name_wins_over_the_resource_attributes() -> None:
    environ = {"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes,a=1"}
    assert dict(settings_from(environ).resource) == {"service.name": "from-attributes", "a": "1"}
    environ["OTEL_SERVICE_NAME"] = "checkout"
    assert dict(settings_from(environ).resource) == {"service.name": "checkout", "a": "1"}


def test_nothing_set_means_nothing_said() -> None:
    settings = settings_from({})
    assert settings.problems == () and settings.headers == () and settings.resource == ()

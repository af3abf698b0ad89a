"""The ``OTEL_*`` environment variables as settings for the ``otlp`` sink. Pure.

:func:`settings_from` reads a mapping (``os.environ``, or a dict in tests) the way the
OpenTelemetry SDKs read the environment, following the OTLP exporter and resource
specifications (the parsing rules are those of ``opentelemetry-python``'s exporter)::

    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT       the URL, used as is
    OTEL_EXPORTER_OTLP_ENDPOINT            a base URL: "/v1/logs" is appended
                                           (default http://127.0.0.1:4318/v1/logs)
    OTEL_EXPORTER_OTLP_(LOGS_)HEADERS      key=value,key2=value2 (values percent-decoded)
    OTEL_EXPORTER_OTLP_(LOGS_)TIMEOUT      milliseconds per request (default 10000)
    OTEL_EXPORTER_OTLP_(LOGS_)COMPRESSION  gzip or none (default none)
    OTEL_EXPORTER_OTLP_(LOGS_)CERTIFICATE  CA file to verify an https receiver
    OTEL_EXPORTER_OTLP_(LOGS_)CLIENT_CERTIFICATE, _CLIENT_KEY   client TLS (PEM files)
    OTEL_EXPORTER_OTLP_(LOGS_)PROTOCOL     only http/protobuf is spoken (others are said)
    OTEL_RESOURCE_ATTRIBUTES               key=value,... resource attributes (strings)
    OTEL_SERVICE_NAME                      service.name, over everything else

The ``LOGS_`` variable wins over the generic one; an empty value is unset. A URL
given in the spec (``otlp:URL``) wins over both endpoint variables and is used as is.

A value that does not parse is skipped and said, as the SDKs log it and go on
(:attr:`OtlpSettings.problems`, which the sink says once); only an endpoint that is
not an ``http://`` or ``https://`` URL is an error (:class:`OtlpConfigError`), raised
when the handler is configured. The timeout is in milliseconds, as the specification
says; ``opentelemetry-python`` reads it as seconds (its issue #4044).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import unquote, urlsplit

from ..spec import SinkSpecError

DEFAULT_ENDPOINT = "http://127.0.0.1:4318/v1/logs"
LOGS_PATH = "v1/logs"
DEFAULT_TIMEOUT = 10.0
"""Seconds (the variables say milliseconds: 10000)."""
COMPRESSIONS = ("none", "gzip")
PROTOCOL = "http/protobuf"
RESERVED_HEADERS = frozenset((
    "host", "content-type", "content-length", "content-encoding", "transfer-encoding",
    "connection", "te", "upgrade", "expect",
))
"""Headers the sink writes itself (a variable cannot set them)."""

_PREFIX = "OTEL_EXPORTER_OTLP_"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An HTTP header name (RFC 9110 token)."""
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""What a header value may not hold once decoded (CR, LF and the other controls)."""


class OtlpConfigError(SinkSpecError):
    """The endpoint of an ``otlp`` sink is not an ``http://`` or ``https://`` URL."""


@dataclass(frozen=True)
class Endpoint:
    """Where the sink posts: a URL and its parts, as a request needs them."""

    url: str
    scheme: str
    host: str
    port: int
    target: str
    """The request target: the path (``/`` when the URL has none) and the query."""

    @property
    def secure(self) -> bool:
        """Whether it is ``https``."""
        return self.scheme == "https"

    @property
    def authority(self) -> str:
        """The ``Host`` header: the host (IPv6 in brackets) and a port that is not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class OtlpSettings:
    """Everything the ``otlp`` sink takes from its spec and the environment."""

    endpoint: Endpoint
    headers: tuple[tuple[str, str], ...] = ()
    """Extra request headers, names lowercased, in the order given."""
    timeout: float = DEFAULT_TIMEOUT
    """Seconds one export request may take (connecting, sending, the response)."""
    compression: str = "none"
    certificate: str | None = None
    """A CA file (PEM) to verify an ``https`` receiver with, instead of the system's."""
    client_certificate: str | None = None
    client_key: str | None = None
    resource: tuple[tuple[str, str], ...] = ()
    """Resource attributes from OTEL_RESOURCE_ATTRIBUTES, then service.name from
    OTEL_SERVICE_NAME: they win over what the sink fills in itself."""
    problems: tuple[str, ...] = ()
    """Values that were skipped, and why: said once by the sink."""


def settings_from(environ: Mapping[str, str], url: str | None = None) -> OtlpSettings:
    """The settings ``environ`` describes; ``url`` (the spec's argument) wins over its endpoint.

    Raises :class:`OtlpConfigError` for an endpoint that is not an http(s) URL; every
    other bad value is skipped and listed in :attr:`OtlpSettings.problems`.
    """
    problems: list[str] = []
    endpoint = endpoint_from(environ, url)
    headers_name, headers_text = _signal(environ, "HEADERS")
    headers = parse_headers(headers_text, headers_name, problems)
    timeout = _timeout(environ, problems)
    compression = _compression(environ, problems)
    protocol_name, protocol = _signal(environ, "PROTOCOL")
    if protocol and protocol.strip().lower() != PROTOCOL:
        problems.append(f"{protocol_name}={protocol!r}: this sink speaks {PROTOCOL} only")
    resource = dict(parse_resource_attributes(environ.get("OTEL_RESOURCE_ATTRIBUTES", ""), problems))
    service = environ.get("OTEL_SERVICE_NAME", "").strip()
    if service:
        resource["service.name"] = service
    certificate = _signal(environ, "CERTIFICATE")[1].strip() or None
    client_certificate = _signal(environ, "CLIENT_CERTIFICATE")[1].strip() or None
    client_key = _signal(environ, "CLIENT_KEY")[1].strip() or None
    if (certificate or client_certificate) and not endpoint.secure:
        problems.append(f"TLS files are set but {endpoint.url} is not https: they are not used")
    return OtlpSettings(
        endpoint, tuple(headers), timeout, compression, certificate, client_certificate,
        client_key, tuple(resource.items()), tuple(problems),
    )


def endpoint_from(environ: Mapping[str, str], url: str | None = None) -> Endpoint:
    """The endpoint: ``url``, else the LOGS variable as is, else the generic one + ``/v1/logs``."""
    if url is not None:
        return parse_endpoint(url, "otlp:URL")
    name = f"{_PREFIX}LOGS_ENDPOINT"
    value = environ.get(name, "").strip()
    if value:
        return parse_endpoint(value, name)
    name = f"{_PREFIX}ENDPOINT"
    value = environ.get(name, "").strip()
    if value:
        return parse_endpoint(f"{value.removesuffix('/')}/{LOGS_PATH}", name)
    return parse_endpoint(DEFAULT_ENDPOINT, "the default")


def parse_endpoint(url: str, where: str) -> Endpoint:
    """``url`` checked and split; :class:`OtlpConfigError` naming ``where`` it came from."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise OtlpConfigError(f"bad otlp endpoint {url!r} ({where}): {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise OtlpConfigError(
            f"bad otlp endpoint {url!r} ({where}): expected an http:// or https:// URL, "
            "e.g. http://127.0.0.1:4318/v1/logs"
        )
    if parts.username is not None or parts.password is not None:
        raise OtlpConfigError(
            f"bad otlp endpoint ({where}): credentials in the URL are not sent; "
            "put them in OTEL_EXPORTER_OTLP_HEADERS (authorization=...)"
        )
    if _BAD_VALUE.search(url) or " " in url:
        raise OtlpConfigError(f"bad otlp endpoint {url!r} ({where}): it holds spaces or controls")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Endpoint(
        url, scheme, parts.hostname, port or (443 if scheme == "https" else 80), target,
    )


def parse_headers(text: str, where: str, problems: list[str]) -> list[tuple[str, str]]:
    """``key=value,...`` as header pairs (names lowercased, both percent-decoded).

    As opentelemetry-python's liberal parse: spaces around items, keys and values
    are dropped, a value may hold ``=``. An item without ``=``, with a name that is
    not an HTTP token, or a value that decodes to control characters is skipped and
    listed in ``problems`` (under ``where``, by name or place, never by value: values
    are often secrets); so is a header the sink sets itself.
    """
    headers: dict[str, str] = {}
    for place, item in enumerate(_items(text), 1):
        name, equals, value = item.partition("=")
        name = unquote(name.strip()).strip().lower()
        value = unquote(value.strip()).strip()
        if not equals or not _TOKEN.fullmatch(name):  # not echoed: it may be a secret
            problems.append(f"{where}: skipped item {place} (expected name=value)")
        elif _BAD_VALUE.search(value):
            problems.append(f"{where}: skipped header {name!r} (its value holds control characters)")
        elif name in RESERVED_HEADERS:
            problems.append(f"{where}: skipped header {name!r} (the sink sets it)")
        else:
            headers[name] = value
    return list(headers.items())


def parse_resource_attributes(text: str, problems: list[str]) -> list[tuple[str, str]]:
    """OTEL_RESOURCE_ATTRIBUTES (``key=value,...``, values percent-decoded) as string pairs.

    As opentelemetry-python's resource detector: an item without ``=`` or with an
    empty key is skipped (and listed in ``problems``); a later key wins.
    """
    attributes: dict[str, str] = {}
    for item in _items(text):
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or not key:
            problems.append(f"OTEL_RESOURCE_ATTRIBUTES: skipped {item!r} (expected key=value)")
            continue
        attributes[key] = unquote(value.strip())
    return list(attributes.items())


def _items(text: str) -> list[str]:
    return [item for item in (part.strip() for part in text.split(",")) if item]


def _signal(environ: Mapping[str, str], what: str) -> tuple[str, str]:
    """The variable that sets ``what`` (the LOGS_ one wins) and its value ("" when unset)."""
    for name in (f"{_PREFIX}LOGS_{what}", f"{_PREFIX}{what}"):
        value = environ.get(name, "")
        if value.strip():
            return name, value
    return f"{_PREFIX}{what}", ""


def _timeout(environ: Mapping[str, str], problems: list[str]) -> float:
    name, text = _signal(environ, "TIMEOUT")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        milliseconds = float(text)
    except ValueError:
        milliseconds = -1.0
    if not 0 < milliseconds < float("inf"):
        problems.append(
            f"{name}={text!r}: expected milliseconds above 0; using {DEFAULT_TIMEOUT * 1000:g}"
        )
        return DEFAULT_TIMEOUT
    return milliseconds / 1000.0


def _compression(environ: Mapping[str, str], problems: list[str]) -> str:
    name, text = _signal(environ, "COMPRESSION")
    value = text.strip().lower() or "none"
    if value not in COMPRESSIONS:
        problems.append(f"{name}={text!r}: expected gzip or none; sending uncompressed")
        return "none"
    return value

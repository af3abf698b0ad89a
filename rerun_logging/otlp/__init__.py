"""OpenTelemetry: records as OTLP/HTTP log exports, for the ``otlp`` sink.

The sink (:mod:`rerun_logging.sinks.otlp`) is a shell around pure parts, one module
per job, none of which does I/O:

- :mod:`.config`: the ``OTEL_*`` variables (read from a mapping you pass) as an
  :class:`~.config.OtlpSettings`: endpoint, headers, timeout, compression, TLS files,
  resource attributes. Standard library only.
- :mod:`.mapping`: our records and recording info as an ``ExportLogsServiceRequest``
  (the official generated messages of ``opentelemetry-proto``), and the reading of a
  response's partial success. The only module that imports ``opentelemetry``.
- :mod:`.delivery`: the export state: the bounded backlog of frames, batches, retry
  timing (backoff, ``Retry-After``), what each response means, and every count.
- :mod:`.exchange`: one HTTP/1.1 request and its response as bytes in, bytes out.

``import rerun_logging`` never imports this package's :mod:`.mapping`, nor
``opentelemetry``: a handler configured with an ``otlp`` sink does, on the thread that
configures it. Without the extra installed that fails with :class:`OtlpUnavailable`,
a :class:`~rerun_logging.spec.SinkSpecError` (so also a ``ValueError``) and an
``ImportError``, whose one line names the extra to install.
"""

from __future__ import annotations

import importlib

from ..spec import MissingExtra

EXTRA = "rerun-logging[otlp]"
"""What to install for the ``otlp`` sink."""


class OtlpUnavailable(MissingExtra):
    """The ``otlp`` sink was asked for, and ``opentelemetry-proto`` cannot be imported."""

    sink = "otlp"
    extra = EXTRA


def require() -> None:
    """Import what the ``otlp`` sink needs, now; :class:`OtlpUnavailable` if it cannot.

    Called where the sink is configured (parsing an ``otlp`` spec), never on a flusher.
    """
    importlib.import_module(f"{__name__}.mapping")  # it raises OtlpUnavailable when it cannot

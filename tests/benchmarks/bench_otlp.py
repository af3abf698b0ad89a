"""The ``otlp`` sink's cost per record against the floor and against OpenTelemetry's own.

Run on demand (needs ``rerun-logging[otlp]``, ``opentelemetry-sdk`` and
``opentelemetry-exporter-otlp-proto-http``); pytest does not collect it::

    python tests/benchmarks/bench_otlp.py [--n 20000] [--repeat 3]

Every scenario logs ``N`` times, from one thread::

    logger.info("request %d done", i, extra={"user": "u", "n": i})

into one local OTLP/HTTP receiver (a process of its own that decodes every request
with the official proto classes and counts records and body bytes), until the
receiver holds all ``N``: ``close()`` of our handler, ``force_flush()`` and
``shutdown()`` of the SDK's provider. Scenarios:

- ``NullHandler`` (the floor: the cost of ``logging`` itself);
- ``RerunHandler("save:...")``, our own file, for reference;
- ``RerunHandler("otlp:...")``, protobuf bodies, plain and gzip;
- the OpenTelemetry SDK: ``LoggingHandler`` + ``BatchLogRecordProcessor`` +
  ``OTLPLogExporter`` (http/protobuf), plain and gzip.

Each run's cost is the logging process's CPU time over the loop and the delivery
(``time.process_time``: caller plus background threads, not the receiver's), and its
wall time. Runs are interleaved; the table shows each scenario's best run, its ratio
to the best floor run, and the bytes per record the receiver got.

Then the viewer's OTLP ingest beside its TCP ingest: ``--apps`` processes each post
``--ingest-n`` benchmark records as OTLP/HTTP protobuf requests of 4096 records to one
real viewer's ``--otlp-port`` (one kept-alive connection each), and, in the same run,
send the same records to its TCP port as our frames (``bench_ingest.py``'s
measurement). Records per second in total, until the last answer or acknowledgement.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

RECEIVER = textwrap.dedent('''
    import gzip, json, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest, ExportLogsServiceResponse)
    counts = {"records": 0, "bytes": 0, "requests": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *args): pass
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            counts["bytes"] += len(body)
            counts["requests"] += 1
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportLogsServiceRequest.FromString(body)
            counts["records"] += sum(len(s.log_records) for r in request.resource_logs
                                     for s in r.scope_logs)
            reply = ExportLogsServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        def do_GET(self):
            reply = json.dumps(counts).encode()
            if self.path == "/reset":
                counts.update(records=0, bytes=0, requests=0)
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
''')


class Receiver:
    """The OTLP/HTTP receiver process, on a free loopback port."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/v1/logs"

    def get(self, path: str) -> dict[str, int]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def log_loop(logger: logging.Logger, n: int) -> None:
    for i in range(n):
        logger.info("request %d done", i, extra={"user": "u", "n": i})


def fresh_logger() -> logging.Logger:
    logger = logging.getLogger(f"bench.otlp.{time.monotonic_ns()}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def run_floor(n: int, receiver: Receiver, folder: str) -> None:
    logger = fresh_logger()
    logger.addHandler(logging.NullHandler())
    log_loop(logger, n)


def run_save(n: int, receiver: Receiver, folder: str) -> None:
    from rerun_logging import RerunHandler

    logger = fresh_logger()
    handler = RerunHandler(f"save:{folder}/run-{time.monotonic_ns()}.rrd")
    logger.addHandler(handler)
    log_loop(logger, n)
    handler.close()


def ours(gzip_on: bool) -> Callable[[int, Receiver, str], None]:
    def run(n: int, receiver: Receiver, folder: str) -> None:
        from rerun_logging import RerunHandler

        os.environ["OTEL_EXPORTER_OTLP_COMPRESSION"] = "gzip" if gzip_on else "none"
        logger = fresh_logger()
        handler = RerunHandler(f"otlp:{receiver.url}", flush_timeout=60)
        logger.addHandler(handler)
        log_loop(logger, n)
        handler.close()
        if handler.stats.written != n:
            raise SystemExit(f"the otlp sink delivered {handler.stats.written} of {n}")

    return run


def sdk(gzip_on: bool) -> Callable[[int, Receiver, str], None]:
    def run(n: int, receiver: Receiver, folder: str) -> None:
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        provider = LoggerProvider()
        exporter = OTLPLogExporter(
            endpoint=receiver.url,
            compression=Compression.Gzip if gzip_on else Compression.NoCompression,
        )
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        logger = fresh_logger()
        logger.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
        log_loop(logger, n)
        provider.force_flush(60_000)
        provider.shutdown()

    return run


SCENARIOS: dict[str, Callable[[int, Receiver, str], None]] = {
    "NullHandler (floor)": run_floor,
    "RerunHandler save": run_save,
    "RerunHandler otlp": ours(False),
    "RerunHandler otlp, gzip": ours(True),
    "OTel SDK LoggingHandler + Batch + OTLPLogExporter": sdk(False),
    "OTel SDK, gzip": sdk(True),
}
DELIVERS = {name for name in SCENARIOS if "otlp" in name or "OTel" in name}


def measure(name: str, n: int, receiver: Receiver, folder: str) -> tuple[float, float, float]:
    """(CPU µs per record, wall µs per record, bytes per record on the wire)."""
    receiver.get("/reset")
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    SCENARIOS[name](n, receiver, folder)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    got = receiver.get("/stats") if name in DELIVERS else {"records": n, "bytes": 0}
    if got["records"] != n:
        raise SystemExit(f"{name}: the receiver got {got['records']} of {n} records")
    return cpu / n * 1e6, wall / n * 1e6, got["bytes"] / n


def start_otlp_viewer() -> tuple[subprocess.Popen[str], int]:
    """A real viewer with its OTLP port on a free port; returns it and that port."""
    env = {k: v for k, v in os.environ.items() if k != "RERUN_LOGGING_SINK"}
    process = subprocess.Popen(
        [sys.executable, "-m", "rerun_logging", "viewer", "--port", "0", "--otlp-port", "0",
         "--memory-limit", "2G", "--no-browser"],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "OTLP/HTTP on http://" in line:
            import threading

            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, int(line.rsplit(":", 1)[1].split("/", 1)[0])
    raise RuntimeError("the viewer did not start its OTLP port")


def otlp_bodies(n: int, pid: int) -> list[bytes]:
    """``n`` benchmark records as OTLP/HTTP protobuf bodies of 4096 records."""
    from bench_ingest import BATCH, encoded_stream

    from rerun_logging import format
    from rerun_logging.otlp import mapping

    header, frames, _ = encoded_stream(n, pid)
    decoder = format.StreamDecoder("bench")
    decoder.feed(header + frames)
    messages = list(decoder.messages())
    info = next(m for m in messages if isinstance(m, format.RecordingInfo))
    records = [m for m in messages if isinstance(m, format.Record)]
    resource = mapping.resource(info)
    return [mapping.export_request(resource, records[i:i + BATCH]).SerializeToString()
            for i in range(0, len(records), BATCH)]


def post_bodies(port: int, n: int, ready: object, results: object) -> None:
    """One app: build its bodies, wait for the others, post them in turn on one connection."""
    bodies = otlp_bodies(n, os.getpid())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    ready.wait()  # type: ignore[attr-defined]
    started = time.perf_counter()
    for body in bodies:
        conn.request("POST", "/v1/logs", body, {"Content-Type": "application/x-protobuf"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"the viewer answered {response.status}")
    results.put((started, time.perf_counter()))  # type: ignore[attr-defined]
    conn.close()


def measure_otlp_ingest(apps: int, n: int) -> float:
    """Records per second into one viewer's OTLP port from ``apps`` processes."""
    import multiprocessing

    viewer, port = start_otlp_viewer()
    try:
        ready = multiprocessing.Barrier(apps)
        results: multiprocessing.Queue = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=post_bodies, args=(port, n, ready, results))
                 for _ in range(apps)]
        for proc in procs:
            proc.start()
        spans = [results.get(timeout=600) for _ in procs]
        for proc in procs:
            proc.join()
    finally:
        viewer.terminate()
        viewer.wait(30)
    return apps * n / (max(end for _, end in spans) - min(start for start, _ in spans))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--apps", type=int, default=4)
    parser.add_argument("--ingest-n", type=int, default=100_000, help="records per app")
    args = parser.parse_args()
    print(f"Python {platform.python_version()}, {platform.platform()}, {os.cpu_count()} CPUs, "
          f"N={args.n}, best of {args.repeat}\n")
    receiver = Receiver()
    best: dict[str, tuple[float, float, float]] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for name in SCENARIOS:  # warm-up: imports, first connections
                SCENARIOS[name](200, receiver, folder)
            for _ in range(args.repeat):
                for name in SCENARIOS:
                    result = measure(name, args.n, receiver, folder)
                    if name not in best or result[0] < best[name][0]:
                        best[name] = result
    finally:
        receiver.stop()
    floor_cpu, floor_wall, _ = best["NullHandler (floor)"]
    print("| scenario | CPU µs/rec | x floor | wall µs/rec | x floor | wire bytes/rec |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (cpu, wall, size) in best.items():
        print(f"| {name} | {cpu:.2f} | {cpu / floor_cpu:.2f} | {wall:.2f} | "
              f"{wall / floor_wall:.2f} | {size:.1f} |")

    from bench_ingest import measure_viewer_ingest

    otlp = measure_otlp_ingest(args.apps, args.ingest_n)
    tcp = measure_viewer_ingest(args.apps, args.ingest_n)
    print(f"\n| viewer ingest, {args.apps} apps on loopback | records/s | ratio to TCP |")
    print("|---|---:|---:|")
    print(f"| OTLP/HTTP protobuf, 4096 records a request | {otlp:,.0f} | {otlp / tcp:.2f}x |")
    print(f"| TCP, our frames of 4096 records | {tcp:,.0f} | 1.00x |")


if __name__ == "__main__":
    main()

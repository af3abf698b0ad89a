"""Viewer ingest and the app-side cost of connect mode, against the standard library.

Run on demand; pytest does not collect it (no ``test_`` names)::

    python tests/benchmarks/bench_ingest.py [--apps 4] [--n 250000]

Three measurements, in one run on this machine:

1. **Viewer ingest**: ``--apps`` processes each send a pre-encoded stream of ``--n``
   records (frames of 4096, as the handler writes them) to one real viewer process
   over loopback, and wait until the viewer has acknowledged every frame. Records
   per second in total, from the first byte sent to the last acknowledgement.
2. **The standard library beside it**: the same number of processes each log
   ``--n`` records through ``logging.handlers.SocketHandler`` into a minimal
   ``socketserver`` receiver that unpickles them (the logging cookbook's receiver).
   Records per second until the receiver has them all.
3. **App-side cost of connect mode**: ``logger.info("request %d done", i,
   extra=...)`` through ``RerunHandler("connect:...")`` into the viewer, caller side
   and whole (until the viewer acknowledged everything), as ratios to ``NullHandler``.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import multiprocessing
import os
import pickle
import platform
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rerun_logging import RerunHandler, format  # noqa: E402
from rerun_logging.format import Record, RecordingInfo  # noqa: E402

BATCH = 4096


def start_viewer() -> tuple[subprocess.Popen[str], int]:
    """A real viewer on a free port; returns it and its port."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RERUN_LOGGING_SINK", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "rerun_logging", "viewer", "--port", "0", "--memory-limit", "2G"],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "listening on" in line:
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, int(line.rsplit(":", 1)[1])
    raise RuntimeError("the viewer did not start")


def encoded_stream(n: int, pid: int) -> tuple[bytes, bytes, int]:
    """Header and frames of ``n`` benchmark records, and how many frames."""
    info = RecordingInfo("bench", f"rec-{pid}", time.time_ns(), "host", pid, "3", "0")
    t0 = time.time_ns()
    frames = []
    for start in range(0, n, BATCH):
        records = [
            Record(
                seq=i, time_ns=t0 + i * 3000, level=20, level_name="INFO", entity_path="bench",
                logger="bench", message=f"request {i} done", template="request %d done",
                extras={"user": "u", "n": i}, thread=1, thread_name="MainThread",
                process=pid, process_name="MainProcess", path="app.py", line=10,
                function="handle",
            )
            for i in range(start, min(start + BATCH, n))
        ]
        frames.append(format.encode_frame(format.encode_records(records)))
    return format.stream_header(info), b"".join(frames), len(frames)


def send_stream(port: int, n: int, ready: multiprocessing.Barrier, results: multiprocessing.Queue) -> None:
    """One app: connect, wait for the others, send everything, wait for every ack."""
    header, frames, count = encoded_stream(n, os.getpid())
    sock = socket.create_connection(("127.0.0.1", port))
    decoder = format.StreamDecoder("viewer", magic=format.VIEWER_MAGIC)
    ready.wait()
    started = time.perf_counter()
    sock.sendall(header + frames)
    acked = 0
    while acked < count:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("the viewer closed the connection")
        decoder.feed(data)
        for message in decoder.messages():
            if isinstance(message, format.Ack):
                acked = message.frames
    results.put((started, time.perf_counter()))
    sock.close()


def measure_viewer_ingest(apps: int, n: int) -> float:
    viewer, port = start_viewer()
    try:
        ready = multiprocessing.Barrier(apps)
        results: multiprocessing.Queue = multiprocessing.Queue()
        procs = [
            multiprocessing.Process(target=send_stream, args=(port, n, ready, results))
            for _ in range(apps)
        ]
        for p in procs:
            p.start()
        spans = [results.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
    finally:
        viewer.terminate()
        viewer.wait(timeout=30)
    return apps * n / (max(end for _, end in spans) - min(start for start, _ in spans))


class _Receiver(socketserver.StreamRequestHandler):
    """The logging cookbook's receiver: length-prefixed pickles made into LogRecords."""

    def handle(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        while True:
            head = self.rfile.read(4)
            if len(head) < 4:
                return
            (size,) = struct.unpack(">L", head)
            data = self.rfile.read(size)
            logging.makeLogRecord(pickle.loads(data))
            with server.lock:
                server.count += 1
                if server.count == 1:
                    server.first = time.perf_counter()
                if server.count == server.expected:
                    server.last = time.perf_counter()
                    server.done.set()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, expected: int) -> None:
        super().__init__(("127.0.0.1", 0), _Receiver)
        self.expected = expected
        self.count = 0
        self.first = self.last = 0.0
        self.lock = threading.Lock()
        self.done = threading.Event()


def log_to_socket_handler(port: int, n: int, ready: multiprocessing.Barrier) -> None:
    logger = logging.getLogger("bench.socket")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.handlers.SocketHandler("127.0.0.1", port)
    logger.addHandler(handler)
    ready.wait()
    for i in range(n):
        logger.info("request %d done", i, extra={"user": "u", "n": i})
    handler.close()


def measure_socket_handler(apps: int, n: int) -> float:
    server = _Server(apps * n)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ready = multiprocessing.Barrier(apps)
    procs = [
        multiprocessing.Process(target=log_to_socket_handler, args=(server.server_address[1], n, ready))
        for _ in range(apps)
    ]
    for p in procs:
        p.start()
    if not server.done.wait(timeout=300):
        raise RuntimeError(f"the receiver got {server.count} of {server.expected} records")
    for p in procs:
        p.join()
    server.shutdown()
    server.server_close()
    return server.count / (server.last - server.first)


def per_record(handler: logging.Handler, n: int) -> tuple[float, float]:
    """Caller and whole microseconds per record through ``handler``."""
    logger = logging.getLogger(f"bench.cost.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    started = time.perf_counter()
    for i in range(n):
        logger.info("request %d done", i, extra={"user": "u", "n": i})
    caller = time.perf_counter() - started
    handler.close()
    whole = time.perf_counter() - started
    logger.removeHandler(handler)
    return caller / n * 1e6, whole / n * 1e6


def measure_connect_cost(n: int, repeat: int) -> dict[str, tuple[float, float]]:
    viewer, port = start_viewer()
    try:
        best: dict[str, tuple[float, float]] = {}
        for _ in range(repeat):
            for name, make in (
                ("NullHandler (floor)", logging.NullHandler),
                ("RerunHandler save", lambda: RerunHandler(f"save:{os.devnull}")),
                ("RerunHandler connect", lambda: RerunHandler(f"connect:127.0.0.1:{port}", flush_timeout=60)),
            ):
                result = per_record(make(), n)
                if name not in best or result[1] < best[name][1]:
                    best[name] = result
        return best
    finally:
        viewer.terminate()
        viewer.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=4)
    parser.add_argument("--n", type=int, default=250_000, help="records per app")
    parser.add_argument("--cost-n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"Python {platform.python_version()}, {platform.platform()}, {os.cpu_count()} CPUs\n")

    ours = measure_viewer_ingest(args.apps, args.n)
    stdlib = measure_socket_handler(args.apps, args.n // 5)
    print(f"| ingest, {args.apps} apps on loopback | records/s | ratio to SocketHandler |")
    print("|---|---:|---:|")
    print(f"| rerun-logging viewer | {ours:,.0f} | {ours / stdlib:.1f}x |")
    print(f"| SocketHandler -> socketserver | {stdlib:,.0f} | 1.0x |")
    print(f"\ntarget >= 500,000 records/s: {'met' if ours >= 500_000 else 'NOT met'}\n")

    cost = measure_connect_cost(args.cost_n, args.repeat)
    floor = cost["NullHandler (floor)"][0]
    print("| app side | caller us/rec | x floor | whole us/rec | x floor |")
    print("|---|---:|---:|---:|---:|")
    for name, (caller, whole) in cost.items():
        print(f"| {name} | {caller:.2f} | {caller / floor:.2f} | {whole:.2f} | {whole / floor:.2f} |")


if __name__ == "__main__":
    main()

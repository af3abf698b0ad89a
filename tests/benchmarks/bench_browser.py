"""The web viewer in a real browser: 1M records, filters, scroll, live latency, app cost.

Run on demand; pytest does not collect it (no ``test_`` names)::

    python tests/benchmarks/bench_browser.py [--records 1000000] [--rate 10000]
        [--seconds 5] [--only load,latency,cost] [--cost-n 100000] [--repeat 3]
        [--jumps 20] [--flush-interval S] [--screenshot FILE.png] [--chromium PATH]

Needs Playwright (``pip install playwright``) and Debian's Chromium at
``/usr/bin/chromium`` (or ``--chromium PATH``); never ``playwright install``.
Progress goes to standard error, the results (Markdown) to standard output.

Three measurements:

1. **load**: a standalone viewer (subprocess); the page is opened first and waits
   until ``rerunLogging.ready``; then ``--records`` realistic records (8 loggers,
   ~80% INFO / 10% DEBUG / 7% WARNING / 3% ERROR, messages with numbers, extras
   ``{"user": ..., "latency_ms": ...}``), pre-encoded in frames of 4096, are sent
   over TCP at full speed. Load time: from the first byte sent to the first table
   draw that shows all of them (and to the last batch appended). Then the JS heap
   (after a forced GC), the DOM node count, the level filter (>= WARNING) and a text
   filter (a word in exactly 1% of the messages), each timed as the page's
   ``timings.filterMs``, as wall time from just before ``setFilter`` to the next
   ``onDraw``, and to the frame after it (``requestAnimationFrame`` +
   ``setTimeout(0)``: the frame with the new rows is painted); and ``scrollToRow``
   jumps to random far rows, the same three ways. All wall times are taken inside
   the page (``performance.now()``), so Playwright's round trips are not in them.
   Each action's frames are then watched for 500 ms ("settled": the end of the last
   gap over 50 ms between frames, i.e. the page's deferred work such as the timeline
   and the plot); three windows with no action are the control. Diagnostics: the
   page's time in JSON.parse and in the rest of its message handler (an init script
   wraps ``WebSocket.onmessage``), its time drawing, long tasks, and, measured apart
   in this process, the viewer's Python cost per record to decode frames and to
   make the page's JSON (the path every record takes to a connected page).
2. **latency**: an app (subprocess) with ``RerunHandler("serve:127.0.0.1:0")``;
   the page is opened in follow mode, then the app logs ``--rate`` records/s for
   ``--seconds`` (paced in batches against ``time.perf_counter``). Each draw is
   collected in the page (``onDraw``: wall time, newest record time); a record's
   latency is the wall time of the first draw whose newest time is at or after its
   ``LogRecord.created``, minus that time (read back from the page's store). Also
   the time each batch arrived in the page, to split app+server from page.
3. **cost**: the whole cost per record (loop + ``close()``) of
   ``logger.info("request %d done", i, extra={"user": "u", "n": i})`` in a fresh
   process per run: ``NullHandler`` (floor), ``save:``, ``serve:`` with no page,
   ``serve:`` with a page connected (the browser is in this process, the app in a
   subprocess). Best of ``--repeat`` interleaved rounds.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import logging
import math
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rerun_logging import RerunHandler, format  # noqa: E402
from rerun_logging.format import Record, RecordingInfo  # noqa: E402

BATCH = 4096
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu",
    "--enable-precise-memory-info",  # performance.memory not rounded
    "--js-flags=--expose-gc",        # window.gc() before reading the heap
]
VIEWPORT = {"width": 1400, "height": 900}
NEEDLE = "timeout"
"""The text filter: a word in exactly 1% of the messages and nowhere else."""
LOGGERS = (
    "app.http", "app.http.auth", "app.db", "app.db.pool",
    "app.cache", "app.worker", "app.billing", "app.scheduler",
)

# Installed before the page's own scripts: counts and times what the page does with
# each WebSocket message (JSON.parse apart from the rest: append + incremental filter),
# and optionally the time each batch arrived with the newest record time after it.
INIT_SCRIPT = r"""
(() => {
  const S = window.__bench = {
    messages: 0, bytes: 0, handlerMs: 0, parseMs: 0, maxHandlerMs: 0,
    firstMessage: null, lastMessage: null, arrivals: null, inHandler: false, longTasks: [],
  };
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) S.longTasks.push([e.startTime, e.duration]);
    }).observe({ type: "longtask", buffered: true });
  } catch (e) { S.longTasks = null; }
  const parse = JSON.parse;
  JSON.parse = function (text, reviver) {
    if (!S.inHandler) return parse.call(JSON, text, reviver);
    const t0 = performance.now();
    try { return parse.call(JSON, text, reviver); } finally { S.parseMs += performance.now() - t0; }
  };
  const d = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
  Object.defineProperty(WebSocket.prototype, "onmessage", {
    configurable: true, enumerable: d.enumerable,
    get() { return d.get.call(this); },
    set(f) {
      if (typeof f !== "function") { d.set.call(this, f); return; }
      d.set.call(this, function (ev) {
        const t0 = performance.now();
        S.inHandler = true;
        try { return f.call(this, ev); } finally {
          S.inHandler = false;
          const t1 = performance.now();
          const ms = t1 - t0;
          S.messages++;
          S.bytes += typeof ev.data === "string" ? ev.data.length : ev.data.byteLength;
          S.handlerMs += ms;
          if (ms > S.maxHandlerMs) S.maxHandlerMs = ms;
          const wall = performance.timeOrigin + t1;
          if (S.firstMessage === null) S.firstMessage = wall;
          S.lastMessage = wall;
          const api = window.rerunLogging;
          if (S.arrivals !== null && api && api.total() > 0) {
            S.arrivals.push(wall, api.timeOf(api.total() - 1));
          }
        }
      });
    },
  });
})();
"""

# One timed action in the page: wall from just before the call to the next onDraw,
# and to the frame after it (the one painted with the new rows).
ACTION_JS = r"""
(args) => new Promise((resolve, reject) => {
  const api = window.rerunLogging;
  const prev = api.onDraw;
  let drawAt = null, drawInfo = null, painted = null, settle = null;
  api.onDraw = (d) => {
    if (drawAt === null) { drawAt = performance.now(); drawInfo = d; if (settle) settle(); }
    if (typeof prev === "function") prev(d);
  };
  const t0 = performance.now();
  let ret;
  try {
    if (args.kind === "filter") ret = api.setFilter(args.filter);
    else if (args.kind === "scroll") ret = api.scrollToRow(args.row);
    else { drawAt = performance.now(); drawInfo = { shown: api.shown(), total: api.total() }; }  // idle
  } catch (e) { api.onDraw = prev; reject(e); return; }
  const tCall = performance.now();
  const sync = { filterMs: api.timings.filterMs, redrawMs: api.timings.redrawMs };
  const finish = () => {
    painted = performance.now();
    api.onDraw = prev;
    const result = {
      callMs: tCall - t0, toDrawMs: drawAt - t0, toPaintMs: painted - t0, returned: ret,
      filterMs: args.kind === "filter" ? sync.filterMs : api.timings.filterMs,
      redrawMs: api.timings.redrawMs, shown: drawInfo.shown, total: drawInfo.total,
    };
    // Then watch the frames for settleMs: work the page defers (timeline, plot, side
    // panel) shows up as a long gap between two frames. Settled: the end of the last
    // gap over 50 ms (or the painted frame when there is none).
    let last = painted, maxGap = 0, settled = painted;
    const tick = () => {
      const now = performance.now();
      const gap = now - last;
      if (gap > maxGap) maxGap = gap;
      if (gap > 50) settled = now;
      last = now;
      if (now - t0 < args.settleMs) requestAnimationFrame(tick);
      else resolve({ ...result, settledMs: settled - t0, maxFrameGapMs: maxGap });
    };
    requestAnimationFrame(tick);
  };
  const afterFrame = () => requestAnimationFrame(() => setTimeout(finish, 0));
  // The page's own frame was requested during the call, so it runs before ours.
  requestAnimationFrame(() => setTimeout(() => {
    if (drawAt !== null) finish();
    else settle = afterFrame;  // no draw yet: wait for it, then for its frame
  }, 0));
})
"""


def log(text: str) -> None:
    print(f"[bench_browser {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- realistic records -------------------------------------------------------------


def realistic_records(n: int, pid: int, seed: int = 1) -> Iterator[list[Record]]:
    """``n`` records in lists of ``BATCH``: mixed loggers, levels, numbers and extras.

    Exactly the rows ``i % 100 == 37`` contain :data:`NEEDLE`; levels are drawn at
    random (10% DEBUG, 80% INFO, 7% WARNING, 3% ERROR). Times: 100 µs apart, ending now.
    """
    rng = random.Random(seed)
    t0 = time.time_ns() - n * 100_000
    entities = {name: format.entity_path_for(name) for name in LOGGERS}
    for start in range(0, n, BATCH):
        batch = []
        for i in range(start, min(start + BATCH, n)):
            r = rng.random()
            user = f"u{rng.randrange(500)}"
            latency = round(rng.lognormvariate(2.5, 0.8), 1)
            item = rng.randrange(100_000)
            if i % 100 == 37:
                level, template = 30 if r < 0.5 else 20, "upstream timeout after %d ms (attempt %d)"
                args: tuple[Any, ...] = (int(latency * 10), 1 + i % 3)
            elif r < 0.10:
                level, template, args = 10, "cache lookup item:%d hit=%s", (item, rng.random() < 0.8)
            elif r < 0.90:
                level, template, args = 20, "GET /api/items/%d 200 in %.1f ms", (item, latency)
            elif r < 0.97:
                level, template, args = 30, "slow query on orders (%d rows) took %.1f ms", (item, latency * 20)
            else:
                level, template, args = 40, "payment %d failed: card declined (code %d)", (item, 51)
            logger = LOGGERS[rng.randrange(len(LOGGERS))]
            batch.append(Record(
                seq=i, time_ns=t0 + i * 100_000, level=level,
                level_name=logging.getLevelName(level), entity_path=entities[logger],
                logger=logger, message=template % args, template=template,
                extras={"user": user, "latency_ms": latency}, thread=140000 + i % 4,
                thread_name=f"worker-{i % 4}", process=pid, process_name="MainProcess",
                path="/srv/app/handlers.py", line=100 + i % 50, function="handle",
            ))
        yield batch


def encoded_stream(n: int) -> tuple[bytes, list[bytes]]:
    """The stream header and the frames of ``n`` realistic records."""
    pid = os.getpid()
    info = RecordingInfo("bench-browser", f"load-{pid}", time.time_ns(), "bench-host", pid, "3", "0")
    frames = [format.encode_frame(format.encode_records(b)) for b in realistic_records(n, pid)]
    return format.stream_header(info), frames


@dataclass
class Sent:
    """What the sender thread saw: epoch ms of the first byte, of the last ack."""

    first_byte_ms: float = 0.0
    sent_ms: float = 0.0
    acked_ms: float = 0.0
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def send_stream(port: int, header: bytes, frames: list[bytes], sent: Sent) -> None:
    """Send the stream to the viewer at full speed; wait for the ack of every frame."""
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            decoder = format.StreamDecoder("viewer", magic=format.VIEWER_MAGIC)
            data = header + b"".join(frames)
            sent.first_byte_ms = time.time() * 1000
            sock.sendall(data)
            sent.sent_ms = time.time() * 1000
            acked = 0
            while acked < len(frames):
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError(f"the viewer closed the connection after {acked} acks")
                decoder.feed(chunk)
                for message in decoder.messages():
                    if isinstance(message, format.Ack):
                        acked = message.frames
                    elif isinstance(message, format.Refused):
                        raise RuntimeError(f"the viewer refused the stream: {message}")
            sent.acked_ms = time.time() * 1000
            sock.sendall(format.encode_frame(format.end_message()))  # a clean end ("ended")
            sock.shutdown(socket.SHUT_WR)
    except BaseException as error:  # reported by the main thread
        sent.error = error
    finally:
        sent.done.set()


# --- processes ------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("RERUN_LOGGING_SINK", None)
    return env


def start_viewer() -> tuple[subprocess.Popen[str], int, str]:
    """A standalone viewer on free ports; returns it, its TCP port and the page URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rerun_logging", "viewer", "--port", "0", "--web-port", "0",
         "--no-browser", "--memory-limit", "2G"],
        env=child_env(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    assert process.stderr is not None
    port = url = None
    deadline = time.monotonic() + 30
    for line in process.stderr:
        if "listening on" in line:
            port = int(line.rsplit(":", 1)[1])
        elif "web UI on" in line:
            url = line.split("web UI on", 1)[1].strip()
        if port is not None and url is not None:
            threading.Thread(target=_drain, args=(process.stderr,), daemon=True).start()
            profile = os.environ.get("BENCH_PROFILE_VIEWER")  # py-spy's collapsed stacks, to this path
            if profile:
                subprocess.Popen(["py-spy", "record", "--format", "raw", "-r", "200", "-d", "20",
                                  "-o", profile, "--pid", str(process.pid)], stdout=subprocess.DEVNULL)
            return process, port, url
        if time.monotonic() > deadline:
            break
    stop_process(process)
    raise RuntimeError("the viewer did not start (no 'listening on' and 'web UI on' lines)")


def _drain(stream: Any) -> None:
    for line in stream:
        if "error" in line.lower() or "missed" in line.lower():
            log(f"viewer: {line.rstrip()}")


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Terminate one process we started, kill it if it does not go."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


class Child:
    """This script as a child process speaking JSON lines (stdout) and commands (stdin)."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", *args],
            env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def read(self, timeout: float = 120) -> dict[str, Any]:
        assert self.process.stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if reader.is_alive() or not result or not result[0]:
            raise RuntimeError(f"child {self.process.args[3:]} gave no answer (exit {self.process.poll()})")
        return json.loads(result[0])

    def tell(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        try:
            if self.process.poll() is None and self.process.stdin is not None:
                self.process.stdin.close()  # EOF: the child closes its handler and exits
                self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        stop_process(self.process)


# --- the browser -------------------------------------------------------------------------


class Browser:
    """Playwright's Chromium (sync API: used from the main thread only)."""

    def __init__(self, executable: str) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        try:
            self.browser = self._pw.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        except BaseException:
            self._pw.stop()
            raise
        self.version = self.browser.version

    def open(self, url: str, timeout_ms: float = 30_000) -> Any:
        """A page on ``url`` with the bench's init script, connected and ready."""
        page = self.browser.new_page(viewport=VIEWPORT)
        page.add_init_script(INIT_SCRIPT)
        page.on("pageerror", lambda error: log(f"page error: {error}"))
        page.goto(url)
        page.wait_for_function(
            "() => window.rerunLogging && window.rerunLogging.connected && window.rerunLogging.ready",
            timeout=timeout_ms,
        )
        return page

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self._pw.stop()


try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # reported when the browser is launched
    PlaywrightTimeout = TimeoutError  # type: ignore[misc,assignment]


def clock_offset_ms(page: Any) -> float:
    """The page's ``timeOrigin + now()`` minus this process's ``time.time()`` (ms), best of 5."""
    best: tuple[float, float] | None = None
    for _ in range(5):
        before = time.time() * 1000
        there = page.evaluate("() => performance.timeOrigin + performance.now()")
        after = time.time() * 1000
        if best is None or after - before < best[0]:
            best = (after - before, there - (before + after) / 2)
    assert best is not None
    return best[1]


SETTLE_MS = 500
"""How long each action's frames are watched (the page defers its slow panels by 250 ms)."""


def action(page: Any, **args: Any) -> dict[str, Any]:
    return page.evaluate(ACTION_JS, {"settleMs": SETTLE_MS, **args})


# --- 1. load, filters, scroll ------------------------------------------------------------


def measure_load(
    browser: Browser, n: int, jumps: int, repeats: int, screenshot: Path | None = None
) -> dict[str, Any]:
    log(f"load: encoding {n:,} records")
    started = time.perf_counter()
    header, frames = encoded_stream(n)
    log(f"load: encoded {len(frames)} frames, {sum(map(len, frames)) / 1e6:.1f} MB, "
        f"in {time.perf_counter() - started:.1f} s")
    viewer, port, url = start_viewer()
    page = None
    try:
        page = browser.open(url)
        offset = clock_offset_ms(page)
        page.evaluate(
            """(n) => {
              const B = window.__bench;
              B.target = n; B.loadedDraw = null; B.draws = 0; B.drawMs = 0; B.maxDrawMs = 0;
              window.rerunLogging.onDraw = (d) => {
                B.draws++;
                const ms = window.rerunLogging.timings.redrawMs;
                B.drawMs += ms; if (ms > B.maxDrawMs) B.maxDrawMs = ms;
                if (B.loadedDraw === null && d.total >= n) B.loadedDraw = d.now;
              };
              B.messages = 0; B.bytes = 0; B.handlerMs = 0; B.parseMs = 0; B.maxHandlerMs = 0;
              B.firstMessage = null; B.lastMessage = null;
            }""",
            n,
        )
        sent = Sent()
        sender = threading.Thread(target=send_stream, args=(port, header, frames, sent), daemon=True)
        log(f"load: sending {n:,} records to the viewer")
        sender.start()
        deadline = time.monotonic() + max(60, n / 1_000_000 * 180)
        while True:  # in slices, to stop early when the sender failed
            try:
                page.wait_for_function(
                    """() => { const B = window.__bench; return B.loadedDraw !== null
                               || !!document.querySelector('[data-testid=missed]'); }""",
                    timeout=5_000, polling=100,
                )
                break
            except PlaywrightTimeout:
                if sent.error is not None:
                    raise RuntimeError(f"sending the stream failed: {sent.error!r}") from None
                if time.monotonic() > deadline:
                    total = page.evaluate("() => window.rerunLogging.total()")
                    raise RuntimeError(f"the page holds {total:,} of {n:,} records after "
                                       f"{max(60, n / 1_000_000 * 180):.0f} s") from None
        sent.done.wait(60)
        if sent.error is not None:
            raise RuntimeError(f"sending the stream failed: {sent.error!r}")
        stats = page.evaluate("() => { const B = window.__bench; window.rerunLogging.onDraw = null; "
                              "return {...B, arrivals: null, total: window.rerunLogging.total(), "
                              "missed: (document.querySelector('[data-testid=missed]') || {}).textContent || null}; }")
        if stats["missed"] or stats["total"] < n:
            raise RuntimeError(f"the page holds {stats['total']:,} of {n:,} records: {stats['missed']}")
        first = sent.first_byte_ms + offset  # in the page's clock
        result: dict[str, Any] = {
            "n": n, "frames": len(frames), "bytes_wire": sum(map(len, frames)),
            "load_ms": stats["loadedDraw"] - first,
            "appended_ms": stats["lastMessage"] - first,
            "first_message_ms": stats["firstMessage"] - first,
            "acked_ms": sent.acked_ms + offset - first,
            "messages": stats["messages"], "json_bytes": stats["bytes"],
            "parse_ms": stats["parseMs"], "handler_ms": stats["handlerMs"],
            "max_handler_ms": stats["maxHandlerMs"],
            "draws": stats["draws"], "draw_ms": stats["drawMs"], "max_draw_ms": stats["maxDrawMs"],
            "clock_offset_ms": offset,
        }
        log(f"load: {n:,} records shown {result['load_ms'] / 1000:.2f} s after the first byte")
        result.update(page.evaluate(
            """() => { if (window.gc) { window.gc(); window.gc(); }
                       return { heap: performance.memory ? performance.memory.usedJSHeapSize : null,
                                heapTotal: performance.memory ? performance.memory.totalJSHeapSize : null,
                                dom: document.getElementsByTagName('*').length }; }"""
        ))
        if screenshot is not None:
            page.screenshot(path=str(screenshot))
            log(f"load: screenshot in {screenshot}")
        result["viewer_cost"] = viewer_side_cost(header, frames)
        result["viewer_cost_columns"] = viewer_side_cost_columns(header, frames)  # issue 14 item 1
        since = page.evaluate("() => performance.now()")
        result["idle"] = [action(page, kind="idle") for _ in range(3)]
        result["filters"] = measure_filters(page, n, repeats)
        result["scroll"] = measure_scroll(page, n, jumps)
        result["context"] = measure_context(page, n, jumps)  # issue 14 item 3 (context.js)
        result["long_tasks"] = page.evaluate(
            "(since) => { const L = window.__bench.longTasks; "
            "return L === null ? null : L.filter((t) => t[0] >= since).map((t) => t[1]); }", since)
        result["facets_patterns"] = measure_facets_patterns(page, repeats)  # issue 14 items 2, 4
        return result
    finally:
        if page is not None:
            page.close()
        stop_process(viewer)


def viewer_side_cost(header: bytes, frames: list[bytes], sample: int = 25) -> dict[str, float]:
    """Diagnostic, in this process: µs per record to decode the frames and to make the
    page's JSON batches of them (:class:`~rerun_logging.viewer.feed.FeedClient`), the
    two Python steps the viewer runs per record for a connected page."""
    from rerun_logging.viewer.feed import FeedClient

    frames = frames[:sample]
    decoder = format.StreamDecoder("bench")
    started = time.perf_counter()
    decoder.feed(header + b"".join(frames))
    records = [m for m in decoder.messages() if isinstance(m, Record)]
    decoded = time.perf_counter()
    feed = FeedClient(max_batches=10**6, max_bytes=2**40)
    for start in range(0, len(records), BATCH):
        feed.records("rec", records[start:start + BATCH], 1)
    feed.data_to_send()
    jsoned = time.perf_counter()
    count = max(1, len(records))
    return {"decode_us": (decoded - started) / count * 1e6, "json_us": (jsoned - decoded) / count * 1e6,
            "records": len(records)}


# --- 1a. the viewer's columnar path (issue 14 item 1) ------------------------------------------


def viewer_side_cost_columns(header: bytes, frames: list[bytes], sample: int = 25) -> dict[str, float]:
    """As :func:`viewer_side_cost`, by the path the viewer's ingest and web feed take
    (issue 14): frames decoded to one ``RecordColumns`` per RECORDS message and cut to
    the caps column by column (``bounded_messages``), then the page's binary batches
    made from the columns (``FeedClient(binary=True)``, as the web feed makes them); no
    Python object per record. Best of three (CPU time is shared here)."""
    from rerun_logging.viewer.feed import FeedClient
    from rerun_logging.viewer.ingest import bounded_messages

    best: dict[str, float] = {}
    for _ in range(3):
        decoder = format.StreamDecoder("bench", columns=True)
        started = time.perf_counter()
        decoder.feed(header + b"".join(frames[:sample]))
        batches = []
        for frame in decoder.frames():
            messages, _ = bounded_messages(list(decoder.decode_payload(frame)), len(frame.payload))
            batches += [m for m in messages if isinstance(m, format.RecordColumns)]
        decoded = time.perf_counter()
        feed = FeedClient(max_batches=10**6, max_bytes=2**40, binary=True)
        for batch in batches:
            feed.records("rec", batch, 1)
        feed.data_to_send()
        jsoned = time.perf_counter()
        count = max(1, sum(map(len, batches)))
        run = {"decode_us": (decoded - started) / count * 1e6,
               "json_us": (jsoned - decoded) / count * 1e6, "records": count}
        if not best or run["decode_us"] + run["json_us"] < best["decode_us"] + best["json_us"]:
            best = run
    return best


def report_viewer_cost_columns(r: dict[str, Any]) -> str:
    """The row of :func:`viewer_side_cost_columns` in the load table."""
    cost = r.get("viewer_cost_columns")
    if not cost:
        return "| viewer's Python per record, columns path | n/a | |"
    return (f"| viewer's Python per record, columns path (ingest caps + page batches, best of 3): "
            f"decode / batches | {cost['decode_us']:.1f} / {cost['json_us']:.1f} µs | ⇒ at most "
            f"{1e6 / (cost['decode_us'] + cost['json_us']):,.0f} records/s to a page "
            f"({cost['records']:,} records) |")


FILTERS = (
    ("level >= WARNING", {"search": "", "minLevel": 30}),
    (f'text "{NEEDLE}" (1%)', {"search": NEEDLE, "minLevel": 0}),
    ("clear (all rows)", {"search": "", "minLevel": 0}),
)


def measure_filters(page: Any, n: int, repeats: int) -> dict[str, list[dict[str, Any]]]:
    log(f"filters: {len(FILTERS)} filters x {repeats}")
    out: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in FILTERS}
    for _ in range(repeats):
        for name, f in FILTERS:
            out[name].append(action(page, kind="filter", filter=f))
    text = out[FILTERS[1][0]][0]
    if text["shown"] != n // 100 + (1 if n % 100 > 37 else 0):
        log(f"warning: the text filter shows {text['shown']:,} rows, expected {n // 100:,}")
    return out


def measure_scroll(page: Any, n: int, jumps: int) -> list[dict[str, Any]]:
    """``scrollToRow`` to random rows, each at least a tenth of the table away."""
    log(f"scroll: {jumps} jumps")
    action(page, kind="filter", filter={"search": "", "minLevel": 0})
    shown = page.evaluate("() => window.rerunLogging.shown()")
    rng = random.Random(7)
    row, out = shown - 1, []
    for _ in range(jumps):
        row = (row + rng.randint(shown // 10, shown - shown // 10)) % shown
        out.append({**action(page, kind="scroll", row=row), "row": row})
    log("scroll: painted / settled / longest frame gap, ms: " + ", ".join(
        f"{x['toPaintMs']:.0f}/{x['settledMs']:.0f}/{x['maxFrameGapMs']:.0f}" for x in out))
    slowest = max(range(len(out)), key=lambda k: out[k]["toPaintMs"])
    log(f"scroll: slowest painted frame: jump {slowest + 1} of {len(out)}, "
        f"{out[slowest]['toPaintMs']:.1f} ms (to onDraw {out[slowest]['toDrawMs']:.1f} ms)")
    return out


# --- 1b. the context view (context.js) ---------------------------------------------------------

CONTEXT_SIZE = 50
"""Records shown before and after the row in the context view."""

# "show context" of store row `args.row`: the page's own time (timings.contextMs), the
# wall time to the next draw and to the frame after it; then back to the filtered view.
CONTEXT_JS = r"""
(args) => new Promise((resolve) => {
  const api = window.rerunLogging;
  const prev = api.onDraw;
  let drawAt = null;
  api.onDraw = (d) => { if (drawAt === null) drawAt = performance.now(); if (typeof prev === "function") prev(d); };
  const t0 = performance.now();
  const contextMs = api.showContext(args.row, args.size);
  const callMs = performance.now() - t0;
  requestAnimationFrame(() => setTimeout(() => {
    const painted = performance.now();
    api.onDraw = prev;
    const shown = api.shown();
    const t1 = performance.now();
    api.leaveContext();
    resolve({ contextMs, findMs: api.timings.contextFindMs, callMs, toDrawMs: drawAt === null ? null : drawAt - t0, toPaintMs: painted - t0,
              shown, backMs: performance.now() - t1 });
  }, 0));
})
"""


def measure_context(page: Any, n: int, jumps: int) -> dict[str, Any]:
    """The context view ("show context") from rows of a filtered view (the text filter), at random store
    rows; then the worst case: a stream of one record after all the others (the walk
    goes over every row held to find no neighbour)."""
    log(f"context: {jumps} rows, ±{CONTEXT_SIZE}")
    action(page, kind="filter", filter={"search": NEEDLE, "minLevel": 0})
    rng = random.Random(11)
    rows = [rng.randrange(n) for _ in range(jumps)]
    dense = []
    for row in rows:  # as a user does: the row selected first (a frame), then its context
        page.evaluate("(r) => new Promise((done) => { window.rerunLogging.select(r); "
                      "requestAnimationFrame(() => setTimeout(done, 0)); })", row)
        dense.append(page.evaluate(CONTEXT_JS, {"row": row, "size": CONTEXT_SIZE}))
    page.evaluate("""() => { const api = window.rerunLogging;
        api.inject({type: "records", recording: "bench-sparse", pid: 1, reset: true,
            strings: ["INFO", "sparse", "/sparse", "sparse.py"],
            seq: [0], time: [Date.now()], ns: [0], level: [20], level_name: [0],
            logger: [1], entity: [2], message: ["the only record of its stream"], template: [null],
            extras: [null], thread: [1], thread_name: [null], process: [1], process_name: [null],
            task: [null], path: [3], line: [1], function: [null], exception: [], stack: []}); }""")
    last = page.evaluate("() => window.rerunLogging.total() - 1")
    sparse = [page.evaluate(CONTEXT_JS, {"row": last, "size": CONTEXT_SIZE}) for _ in range(3)]
    action(page, kind="filter", filter={"search": "", "minLevel": 0})
    log("context: found / shown (contextMs) / painted frame, ms: " + ", ".join(
        f"{x['findMs']:.2f}/{x['contextMs']:.1f}/{x['toPaintMs']:.0f}" for x in dense)
        + "; sparse stream: " + ", ".join(f"{x['findMs']:.2f}/{x['contextMs']:.1f}" for x in sparse))
    return {"dense": dense, "sparse": sparse, "n": n}


def report_context(r: dict[str, Any] | None) -> list[str]:
    if not r:
        return []
    lines = [
        "",
        f"| Context view (±{CONTEXT_SIZE}, over {r['n']:,} records) | rows shown | finding the rows med / max "
        "| `contextMs` (found + drawn) med / max "
        "| wall to `onDraw` med / max | wall to painted frame med / max | back med / max | target | met |",
        "|---|---:|---:|---:|---:|---:|---:|---|:---:|",
    ]
    for name, runs in (("from a filtered row (one dense stream)", r["dense"]),
                       ("a one-record stream after all the others (walks every row)", r["sparse"])):
        cm = [x["contextMs"] for x in runs]
        fm = [x["findMs"] for x in runs]
        td = [x["toDrawMs"] for x in runs if x["toDrawMs"] is not None] or [float("nan")]
        tp = [x["toPaintMs"] for x in runs]
        bk = [x["backMs"] for x in runs]
        lines.append(
            f"| {name} ({len(runs)} runs) | {runs[0]['shown']:,} | {med(fm):.2f} / {max(fm):.2f} | "
            f"{med(cm):.2f} / {max(cm):.2f} | "
            f"{med(td):.1f} / {max(td):.1f} | {med(tp):.1f} / {max(tp):.1f} | {med(bk):.1f} / {max(bk):.1f} "
            f"| < 50 ms | {verdict(max(td) < 50)} |"
        )
    return lines


# --- 1c. the facets and patterns panels (facets.js, patterns.js) -----------------------------

FACET_FILTERS = (
    ("all rows", {"search": "", "minLevel": 0}),
    ("level >= WARNING", {"search": "", "minLevel": 30}),
    (f'text "{NEEDLE}" (1%)', {"search": NEEDLE, "minLevel": 0}),
)

# Set the filter, then count facets and patterns now: each one's counting alone
# (timings.*ComputeMs) and with filling its panel (the hooks' return).
FACETS_NOW_JS = r"""
(f) => {
  const api = window.rerunLogging;
  api.setFilter(f);
  const facetsMs = api.refreshFacets(), facetsComputeMs = api.timings.facetsComputeMs;
  const patternsMs = api.refreshPatterns(), patternsComputeMs = api.timings.patternsComputeMs;
  return { shown: api.shown(), facetsMs, facetsComputeMs, patternsMs, patternsComputeMs,
           fields: api.facets().facets.length, patterns: api.patterns().total };
}
"""

# With both panels open, as a user sees it: the filter's frame (the panels are not in
# it), then the wall time until both panels show the new rows (their deferred,
# throttled run: up to 250 ms after their previous one).
FACETS_DEFERRED_JS = r"""
(f) => new Promise((resolve) => {
  const api = window.rerunLogging;
  const f0 = api.facets(), p0 = api.patterns();
  const t0 = performance.now();
  api.setFilter(f);
  let painted = null;
  requestAnimationFrame(() => setTimeout(() => { if (painted === null) painted = performance.now() - t0; }, 0));
  const poll = () => {
    if (api.facets() !== f0 && api.patterns() !== p0 && painted !== null) {
      resolve({ paintedMs: painted, updatedMs: performance.now() - t0, shown: api.shown() });
    } else setTimeout(poll, 1);
  };
  setTimeout(poll, 0);
})
"""


def measure_facets_patterns(page: Any, repeats: int) -> dict[str, Any]:
    """Open both panels (the first facets run builds the extras index over every record),
    then per filter: facets and patterns counted now, and the deferred update as the
    page does it."""
    log("facets and patterns: opening the panels")
    first = page.evaluate("""() => { const api = window.rerunLogging, t = api.timings;
        api.setFilter({ search: "", minLevel: 0 });
        api.refreshFacets(); const facets = { ms: t.facetsMs, compute: t.facetsComputeMs };
        api.refreshPatterns(); const patterns = { ms: t.patternsMs, compute: t.patternsComputeMs };
        api.showFacets(true); api.showPatterns(true);
        return { facets, patterns, shown: api.shown() }; }""")
    now: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in FACET_FILTERS}
    deferred: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in FACET_FILTERS}
    for _ in range(repeats):
        for name, f in FACET_FILTERS:
            now[name].append(page.evaluate(FACETS_NOW_JS, f))
    for _ in range(repeats):
        for name, f in FACET_FILTERS:
            deferred[name].append(page.evaluate(FACETS_DEFERRED_JS, f))
    page.evaluate("""() => { const api = window.rerunLogging; api.showFacets(false); api.showPatterns(false);
        api.setFilter({ search: "", minLevel: 0 }); }""")
    log("facets / patterns ms: " + ", ".join(
        f"{name}: {max(x['facetsMs'] for x in runs):.1f} / {max(x['patternsMs'] for x in runs):.1f}"
        for name, runs in now.items()))
    return {"first": first, "now": now, "deferred": deferred}


def report_facets_patterns(r: dict[str, Any] | None) -> list[str]:
    if not r:
        return []
    first = r["first"]
    lines = [
        "",
        f"| Facets and patterns panels ({first['shown']:,} rows held) | rows shown | facets: counting "
        "med / max | facets + panel med / max | patterns: counting med / max | patterns + panel med / max "
        "| target | met |",
        "|---|---:|---:|---:|---:|---:|---|:---:|",
        f"| first opening (facets: builds the extras index over every record) | {first['shown']:,} "
        f"| {first['facets']['compute']:.1f} | {first['facets']['ms']:.1f} | {first['patterns']['compute']:.1f} "
        f"| {first['patterns']['ms']:.1f} | – | – |",
    ]
    for name, runs in r["now"].items():
        fc = [x["facetsComputeMs"] for x in runs]
        fm = [x["facetsMs"] for x in runs]
        pc = [x["patternsComputeMs"] for x in runs]
        pm = [x["patternsMs"] for x in runs]
        lines.append(
            f"| {name}: {runs[0]['fields']} facets, {runs[0]['patterns']:,} patterns | {runs[0]['shown']:,} "
            f"| {med(fc):.1f} / {max(fc):.1f} | {med(fm):.1f} / {max(fm):.1f} | {med(pc):.1f} / {max(pc):.1f} "
            f"| {med(pm):.1f} / {max(pm):.1f} | facets < 200, patterns < 300 ms "
            f"| {verdict(max(fm) < 200 and max(pm) < 300)} |"
        )
    lines += ["", "| Both panels open, filter changed | rows shown | wall to the painted frame med / max "
              "| wall to both panels updated med / max |", "|---|---:|---:|---:|"]
    for name, runs in r["deferred"].items():
        pt = [x["paintedMs"] for x in runs]
        up = [x["updatedMs"] for x in runs]
        lines.append(f"| {name} | {runs[0]['shown']:,} | {med(pt):.1f} / {max(pt):.1f} | {med(up):.1f} / {max(up):.1f} |")
    lines += ["", "The panels count after the frame that shows the new rows (a timer, at most every "
              "250 ms on big data), so the filter's own frame does not wait for them; \"updated\" "
              "includes that wait."]
    return lines


# --- 2. latency at a steady rate ------------------------------------------------------------


def measure_latency(
    browser: Browser, rate: int, seconds: float, flush_interval: float | None
) -> dict[str, Any]:
    extra = () if flush_interval is None else ("--flush-interval", str(flush_interval))
    child = Child("serve-app", "--rate", str(rate), "--seconds", str(seconds), *extra)
    page = None
    try:
        url = child.read(60)["url"]
        log(f"latency: app serves {url}")
        page = browser.open(url)
        offset = clock_offset_ms(page)
        page.evaluate("""() => {
            const B = window.__bench; B.drawLog = []; B.arrivals = [];
            window.rerunLogging.setFollow(true);
            window.rerunLogging.onDraw = (d) => { B.drawLog.push(d.now, d.newestTime); };
        }""")
        base = page.evaluate("() => window.rerunLogging.total()")
        log(f"latency: logging {rate:,} records/s for {seconds:g} s")
        child.tell("go")
        app = child.read(seconds * 4 + 60)
        try:
            page.wait_for_function(f"() => window.rerunLogging.total() >= {base + app['emitted']}",
                                   timeout=30_000, polling=100)
        except Exception:  # reported below as records missing
            pass
        # let the frame that draws the last batch happen (it follows the append)
        page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))")
        data = page.evaluate("""(base) => {
            const api = window.rerunLogging, B = window.__bench;
            api.onDraw = null;
            const n = api.total(), times = new Array(Math.max(0, n - base));
            for (let i = base; i < n; i++) times[i - base] = api.timeOf(i);
            return { times, draws: B.drawLog, arrivals: B.arrivals, total: n,
                     missed: (document.querySelector('[data-testid=missed]') || {}).textContent || null };
        }""", base)
        child.tell("stop")
        return latency_stats(app, data, offset)
    finally:
        if page is not None:
            page.close()
        child.stop()


def first_at_or_after(pairs: list[float], times: list[float], offset: float) -> list[float | None]:
    """For each time, the wall time (less ``offset``) of the first (wall, newest) pair whose
    newest >= it, minus it; None when there is none."""
    walls = pairs[0::2]
    newest: list[float] = []
    best = float("-inf")
    for value in pairs[1::2]:
        best = max(best, value if value == value else float("-inf"))  # NaN: nothing yet
        newest.append(best)
    out: list[float | None] = []
    for t in times:
        k = bisect.bisect_left(newest, t)
        out.append(walls[k] - offset - t if k < len(walls) else None)
    return out


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    s = sorted(values)

    def pct(p: float) -> float:
        return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]  # nearest rank

    return {"p50": pct(50), "p95": pct(95), "p99": pct(99), "max": s[-1], "mean": statistics.fmean(s)}


def latency_stats(app: dict[str, Any], data: dict[str, Any], offset: float) -> dict[str, Any]:
    """Per-record latencies (ms). Record and newest times are the app's clock (``created``),
    draw and arrival times the page's: those are moved back by the clock offset."""
    times = data["times"]
    to_draw = first_at_or_after(data["draws"], times, offset)
    to_arrive = first_at_or_after(data["arrivals"], times, offset)
    drawn = [v for v in to_draw if v is not None]
    arrived = [v for v in to_arrive if v is not None]
    draw_walls = data["draws"][0::2]
    gaps = [b - a for a, b in zip(draw_walls, draw_walls[1:])]
    return {
        "emitted": app["emitted"], "rate_achieved": app["emitted"] / app["seconds"],
        "behind_ms": app["behind_ms"], "flush_interval": app["flush_interval"],
        "held": len(times), "undrawn": len(to_draw) - len(drawn),
        "missed": data["missed"], "draw": percentiles(drawn), "arrive": percentiles(arrived),
        "draws": len(draw_walls), "draw_gap": percentiles(gaps), "clock_offset_ms": offset,
    }


def child_serve_app(rate: int, seconds: float, flush_interval: float | None) -> None:
    """The latency app: serve, wait for 'go', log at a steady rate, report, wait for 'stop'."""
    options = {} if flush_interval is None else {"flush_interval": flush_interval}
    handler = RerunHandler("serve:127.0.0.1:0", application_id="bench-latency", open_browser=False,
                           **options)
    handler.start()
    root = logging.getLogger("app")
    root.propagate = False
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    loggers = [logging.getLogger(name) for name in LOGGERS]
    answer({"url": handler.url})
    if sys.stdin.readline().strip() != "go":
        handler.close()
        return
    per_batch = max(1, rate // 200)  # a batch every 5 ms
    total = int(rate * seconds)
    rng = random.Random(3)
    behind = 0.0
    start = time.perf_counter()
    i = 0
    while i < total:
        due = start + i / rate
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        else:
            behind = max(behind, now - due)
        for _ in range(min(per_batch, total - i)):
            logger = loggers[i % len(loggers)]
            r = rng.random()
            extra = {"user": f"u{i % 500}", "latency_ms": round(rng.lognormvariate(2.5, 0.8), 1)}
            if r < 0.10:
                logger.debug("cache lookup item:%d hit=%s", i, r < 0.08, extra=extra)
            elif r < 0.90:
                logger.info("GET /api/items/%d 200 in %.1f ms", i, extra["latency_ms"], extra=extra)
            elif r < 0.97:
                logger.warning("slow query on orders (%d rows) took %.1f ms", i, r * 1000, extra=extra)
            else:
                logger.error("payment %d failed: card declined (code %d)", i, 51, extra=extra)
            i += 1
    elapsed = time.perf_counter() - start
    answer({"emitted": total, "seconds": elapsed, "behind_ms": behind * 1000,
            "dropped": handler.stats.dropped, "flush_interval": handler.flush_interval})
    sys.stdin.readline()  # "stop" or EOF
    handler.close()


# --- 3. app-side cost ---------------------------------------------------------------------------


COST_SCENARIOS = ("null", "save", "serve", "serve+page")
COST_LABELS = {
    "null": "`NullHandler` (floor)",
    "save": '`RerunHandler("save:PATH")`',
    "serve": '`RerunHandler("serve:127.0.0.1:0")`, no page',
    "serve+page": '`RerunHandler("serve:127.0.0.1:0")`, page connected',
}


def child_cost(scenario: str, n: int) -> None:
    """One measured run in a fresh process (the page, if any, is the parent's)."""
    directory = Path(tempfile.mkdtemp(prefix="bench-browser-"))
    try:
        if scenario == "null":
            handler: logging.Handler = logging.NullHandler()
        elif scenario == "save":
            handler = RerunHandler(f"save:{directory / 'app.rrd'}", application_id="bench")
        else:
            handler = RerunHandler("serve:127.0.0.1:0", application_id="bench", open_browser=False)
            handler.start()
        logger = logging.getLogger("bench.handler")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        warm = logging.getLogger("bench.warmup")
        warm.propagate = False
        warm.addHandler(logging.NullHandler())
        for i in range(min(n, 20_000)):  # warm up logging itself
            warm.info("request %d done", i, extra={"user": "u", "n": i})
        if scenario == "serve+page":
            answer({"url": handler.url})  # type: ignore[attr-defined]
            if sys.stdin.readline().strip() != "go":
                handler.close()
                return
        logger.addHandler(handler)
        info = logger.info
        gc.collect()
        start = time.perf_counter()
        for i in range(n):
            info("request %d done", i, extra={"user": "u", "n": i})
        looped = time.perf_counter()
        handler.close()
        finished = time.perf_counter()
        problem = None
        if isinstance(handler, RerunHandler):
            stats = handler.stats
            written = stats.sinks[0].written if stats.sinks else 0
            if stats.dropped or written != n:
                problem = f"wrote {written} of {n}, dropped {stats.dropped_by_reason}"
        answer({"caller": looped - start, "whole": finished - start, "problem": problem})
    finally:
        for file in directory.iterdir():
            file.unlink()
        directory.rmdir()


def measure_cost(browser: Browser, n: int, repeat: int) -> dict[str, dict[str, Any]]:
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in COST_SCENARIOS}
    for round_ in range(repeat):
        for scenario in COST_SCENARIOS:
            child = Child("cost", "--scenario", scenario, "--cost-n", str(n))
            page = None
            try:
                if scenario == "serve+page":
                    url = child.read(60)["url"]
                    page = browser.open(url)
                    child.tell("go")
                result = child.read(300)
                if page is not None:
                    result["page_total"] = page.evaluate("() => window.rerunLogging.total()")
                runs[scenario].append(result)
            finally:
                if page is not None:
                    page.close()
                child.stop()
        log(f"cost: round {round_ + 1}/{repeat} done")
    out = {}
    for scenario, results in runs.items():
        out[scenario] = {
            "caller": min(r["caller"] for r in results) / n * 1e6,
            "whole": min(r["whole"] for r in results) / n * 1e6,
            "whole_spread": (max(r["whole"] for r in results) / min(r["whole"] for r in results) - 1) * 100,
            "problems": [r["problem"] for r in results if r.get("problem")],
            "page_total": [r["page_total"] for r in results if "page_total" in r],
        }
    return out


# --- report -----------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values)


def fmt_ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def settle_cell(runs: list[dict[str, Any]]) -> str:
    st = [x["settledMs"] for x in runs]
    return f"{med(st):.1f} / {max(st):.1f} ({max(x['maxFrameGapMs'] for x in runs):.0f})"


def report_load(r: dict[str, Any]) -> list[str]:
    n = r["n"]
    mb = 1024 * 1024
    lines = [
        f"### 1. {n:,} records into the page (standalone viewer, sent at full speed)",
        "",
        "| Measure | Value | Target / note |",
        "|---|---:|---|",
        f"| load: first byte sent → first draw showing all {n:,} | {r['load_ms'] / 1000:.2f} s "
        f"| {n / (r['load_ms'] / 1000):,.0f} records/s |",
        f"| first byte → last batch appended in the page | {r['appended_ms'] / 1000:.2f} s | |",
        f"| first byte → viewer acked every frame | {r['acked_ms'] / 1000:.2f} s "
        f"| ingest + batches for the page, in the viewer |",
        f"| first byte → first batch in the page | {r['first_message_ms'] / 1000:.2f} s | |",
        f"| page busy with messages (JSON.parse / append + filter) | "
        f"{r['handler_ms'] / 1000:.2f} s ({r['parse_ms'] / 1000:.2f} / "
        f"{(r['handler_ms'] - r['parse_ms']) / 1000:.2f}) | {r['messages']} messages, "
        f"{r['json_bytes'] / mb:.0f} MB received, slowest {r['max_handler_ms']:.0f} ms |",
        f"| page busy drawing the table | {r['draw_ms'] / 1000:.2f} s | {r['draws']} draws, "
        f"slowest {r['max_draw_ms']:.1f} ms |",
        f"| JS heap after (used, after GC) | {r['heap'] / mb:.0f} MB | total {r['heapTotal'] / mb:.0f} MB |"
        if r.get("heap") else "| JS heap | n/a | performance.memory missing |",
        f"| DOM nodes | {r['dom']:,} | |",
        f"| viewer's Python per record, measured apart: decode / JSON for the page | "
        f"{r['viewer_cost']['decode_us']:.1f} / {r['viewer_cost']['json_us']:.1f} µs "
        f"| ⇒ at most {1e6 / (r['viewer_cost']['decode_us'] + r['viewer_cost']['json_us']):,.0f} "
        f"records/s to a page (in this process, {r['viewer_cost']['records']:,} records) |",
        report_viewer_cost_columns(r),
        "",
        "| Action (over all rows held) | rows shown | `filterMs` first / med / max | `redrawMs` med / max "
        "| wall to `onDraw` first / med / max | wall to painted frame med / max "
        "| settled med / max (longest frame gap) | target | met (onDraw max) |",
        "|---|---:|---:|---:|---:|---:|---:|---|:---:|",
    ]
    for name, runs in r["filters"].items():
        fm = [x["filterMs"] for x in runs]
        rd = [x["redrawMs"] for x in runs]
        td = [x["toDrawMs"] for x in runs]
        tp = [x["toPaintMs"] for x in runs]
        lines.append(
            f"| filter: {name} | {runs[0]['shown']:,} | {fm[0]:.1f} / {med(fm):.1f} / {max(fm):.1f} | "
            f"{med(rd):.1f} / {max(rd):.1f} | {td[0]:.1f} / {med(td):.1f} / {max(td):.1f} | "
            f"{med(tp):.1f} / {max(tp):.1f} | {settle_cell(runs)} | < 100 ms | {verdict(max(td) < 100)} |"
        )
    idle = r["idle"]
    lines.append(
        f"| control: no action ({len(idle)} windows) | {idle[0]['shown']:,} | – | – | – | – | "
        f"{settle_cell(idle)} | – | – |"
    )
    sc = r["scroll"]
    rd = [x["redrawMs"] for x in sc]
    td = [x["toDrawMs"] for x in sc]
    tp = [x["toPaintMs"] for x in sc]
    lines.append(
        f"| scroll jump: `scrollToRow` ({len(sc)} random far rows) | {sc[0]['shown']:,} | – | "
        f"{med(rd):.1f} / {max(rd):.1f} | {td[0]:.1f} / {med(td):.1f} / {max(td):.1f} | "
        f"{med(tp):.1f} / {max(tp):.1f} | {settle_cell(sc)} | < 50 ms | {verdict(max(td) < 50)} |"
    )
    lines += [
        "",
        ("Long tasks (> 50 ms) on the page's main thread while filtering and scrolling: "
         + (f"{len(r['long_tasks'])}" + (f", longest {max(r['long_tasks']):.0f} ms, total "
            f"{sum(r['long_tasks']):.0f} ms" if r["long_tasks"] else "")
            if r.get("long_tasks") is not None else "not observable") + "."),
        "",
        "Wall times are taken in the page from just before the call. `scrollToRow` draws "
        "synchronously, so its onDraw comes within the call; \"painted frame\" is the next "
        "`requestAnimationFrame` + `setTimeout(0)` after the draw: it includes waiting for the "
        "frame (up to 16.7 ms at 60 Hz), the page's other per-frame work (timeline, side panel, "
        "plot) and style/layout/paint. \"settled\": each action's frames are then watched for "
        f"{SETTLE_MS} ms; settled is the end of the last gap of more than 50 ms between two frames "
        "(the page's deferred work: timeline, plot, side panel), or the painted frame when none; "
        "in brackets the longest gap between two frames.",
    ]
    lines += report_context(r.get("context"))
    lines += report_facets_patterns(r.get("facets_patterns"))
    return lines


def report_latency(r: dict[str, Any], rate: int, seconds: float) -> list[str]:
    d, a, g = r["draw"], r["arrive"], r["draw_gap"]
    lines = [
        f"### 2. Latency from `emit` to the row drawn, serve mode, {rate:,} records/s for {seconds:g} s",
        "",
        f"Handler `flush_interval` {r['flush_interval'] * 1000:g} ms. "
        f"{r['emitted']:,} records emitted at {r['rate_achieved']:,.0f}/s (pacing fell behind by at "
        f"most {r['behind_ms']:.1f} ms); the page holds {r['held']:,}"
        + (f"; {r['undrawn']:,} never drawn" if r["undrawn"] else "")
        + (f"; page says: {r['missed']}" if r["missed"] else "")
        + f". {r['draws']:,} draws, gap between draws p50 {fmt_ms(g.get('p50'))} / "
        f"max {fmt_ms(g.get('max'))} ms. Clock offset page − app {r['clock_offset_ms']:+.2f} ms "
        "(measured by round trips; page times are moved back by it).",
        "",
        "| ms | p50 | p95 | p99 | max | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    if d:
        lines.append(f"| `created` → first draw showing it | {d['p50']:.1f} | {d['p95']:.1f} | "
                     f"{d['p99']:.1f} | {d['max']:.1f} | p99 ≤ 100 ms: {verdict(d['p99'] <= 100)} |")
    if a:
        lines.append(f"| `created` → its batch appended in the page | {a['p50']:.1f} | {a['p95']:.1f} | "
                     f"{a['p99']:.1f} | {a['max']:.1f} | (app flush + server + WebSocket) |")
    return lines


def report_cost(r: dict[str, dict[str, Any]], n: int, repeat: int) -> list[str]:
    floor = r["null"]["caller"]
    save = r["save"]["whole"]
    lines = [
        f"### 3. App-side cost per record, {n:,} records, best of {repeat} (each run a fresh process)",
        "",
        "| Handler | caller µs/rec | whole µs/rec | whole ×floor | whole ×save | whole spread |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, v in r.items():
        lines.append(
            f"| {COST_LABELS[key]} | {v['caller']:.2f} | {v['whole']:.2f} | {v['whole'] / floor:.2f} | "
            f"{v['whole'] / save:.2f} | +{v['whole_spread']:.0f}% |"
        )
    for key, v in r.items():
        if v["problems"]:
            lines.append(f"\nProblem ({key}): {v['problems'][0]}")
        if v["page_total"]:
            lines.append(f"\nRecords the page held when the app closed ({key}): "
                         + ", ".join(f"{t:,}" for t in v["page_total"]) + f" of {n:,} per run")
    lines += ["", "whole: loop + `close()` (serve: until the in-app server took every frame, "
              "then stops); ×floor against the NullHandler caller time."]
    return lines


def machine_line(chromium: str | None) -> str:
    model = None
    try:
        with open("/proc/cpuinfo") as info:
            model = next((l.split(":", 1)[1].strip() for l in info if l.startswith("model name")), None)
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return (
        f"Machine: {platform.platform()}, {model or platform.processor() or 'unknown CPU'}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, Chromium {chromium or '?'}"
        + (f", load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}" if load else "")
    )


# --- main ------------------------------------------------------------------------------------


def answer(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records for the load test")
    parser.add_argument("--rate", type=int, default=10_000, help="records/s for the latency test")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of the latency test")
    parser.add_argument("--flush-interval", type=float, default=None,
                        help="the latency app's RerunHandler flush_interval, s (default: the handler's)")
    parser.add_argument("--only", default="load,latency,cost", help="comma-separated: load,latency,cost")
    parser.add_argument("--cost-n", type=int, default=100_000, help="records per cost run")
    parser.add_argument("--repeat", type=int, default=3, help="cost rounds; filter repeats")
    parser.add_argument("--jumps", type=int, default=20, help="scroll jumps")
    parser.add_argument("--chromium", default=CHROMIUM)
    parser.add_argument("--screenshot", type=Path, default=None,
                        help="save a screenshot of the loaded page (PNG) here")
    parser.add_argument("--child", choices=("serve-app", "cost"), help=argparse.SUPPRESS)
    parser.add_argument("--scenario", choices=COST_SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.pop("RERUN_LOGGING_SINK", None)
    if args.child == "serve-app":
        child_serve_app(args.rate, args.seconds, args.flush_interval)
        return 0
    if args.child == "cost":
        child_cost(args.scenario, args.cost_n)
        return 0

    only = {part.strip() for part in args.only.split(",") if part.strip()}
    if not only or only - {"load", "latency", "cost"}:
        parser.error("--only takes load, latency, cost")
    if min(args.records, args.rate, args.cost_n, args.repeat, args.jumps) < 1 or args.seconds <= 0:
        parser.error("sizes must be positive")
    if not Path(args.chromium).exists():
        parser.error(f"no Chromium at {args.chromium}")

    started = time.perf_counter()
    browser = Browser(args.chromium)
    sections: list[str] = []
    failures: list[str] = []
    try:
        print(machine_line(browser.version), flush=True)
        steps: list[tuple[str, Callable[[], list[str]]]] = [
            ("load", lambda: report_load(measure_load(browser, args.records, args.jumps, args.repeat,
                                                             args.screenshot))),
            ("latency", lambda: report_latency(measure_latency(browser, args.rate, args.seconds,
                                                               args.flush_interval),
                                               args.rate, args.seconds)),
            ("cost", lambda: report_cost(measure_cost(browser, args.cost_n, args.repeat),
                                         args.cost_n, args.repeat)),
        ]
        for name, step in steps:
            if name not in only:
                continue
            log(f"--- {name}")
            try:
                sections.append("\n".join(step()))
            except Exception as error:  # the other measurements still run
                log(f"{name} failed: {error!r}")
                failures.append(f"{name}: {error!r}")
    finally:
        browser.close()
    print("\n\n".join(["", *sections]))
    if failures:
        print("\nFailed: " + "; ".join(failures))
    print(f"\n(ran {time.perf_counter() - started:.0f} s; load average now "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""The fork stress: a fresh interpreter logs one record and forks at once.

    python fork_once.py SINK [CHILD_TIMEOUT [FLUSH_TIMEOUT]]

The handler is created, one record logged (the flusher is starting: it may be opening
its sink, importing modules, right now), then ``os.fork()``; the child logs one record
and exits normally (``sys.exit``). The parent waits for it at most CHILD_TIMEOUT
seconds; a child still there then is asked for its stacks (SIGABRT: faulthandler,
armed before the fork, prints every thread's Python stack on stderr) and reported as
hung. With a ``serve`` sink the parent then reads its own page's feed until both
records are there. The result is one line on stderr: ``FORK-RESULT {json}``.
"""

import faulthandler
import json
import logging
import os
import signal
import sys
import time

faulthandler.enable(all_threads=True)
SINK = sys.argv[1]
CHILD_TIMEOUT = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
FLUSH_TIMEOUT = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0

import rerun_logging  # noqa: E402

handler = rerun_logging.RerunHandler(SINK, application_id="fork-once", flush_timeout=FLUSH_TIMEOUT,
                                     open_browser=False)
log = logging.getLogger("fork")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(handler)
log.info("parent before the fork", extra={"who": "parent"})
pid = os.fork()
if pid == 0:
    log.info("child after the fork", extra={"who": "child"})
    sys.exit(0)

result = {"parent": os.getpid(), "child": pid, "hung": False, "status": None}
deadline = time.monotonic() + CHILD_TIMEOUT
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        result["status"] = os.waitstatus_to_exitcode(status)
        break
    if time.monotonic() > deadline:
        result["hung"] = True
        os.kill(pid, signal.SIGABRT)
        _, status = os.waitpid(pid, 0)
        result["status"] = os.waitstatus_to_exitcode(status)
        break
    time.sleep(0.005)

if SINK.startswith("serve"):
    from websockets.sync.client import connect

    from rerun_logging.viewer.feed import read_message

    handler.flush()
    url = handler.url or ""
    base, _, query = url.partition("?")
    ws_url = base.rstrip("/").replace("http://", "ws://") + "/ws" + (f"?{query}" if query else "")
    seen: dict[str, list[str]] = {}
    end = time.monotonic() + 5.0
    with connect(ws_url, origin=base.rstrip("/")) as ws:
        while sum(map(len, seen.values())) < 2 and time.monotonic() < end:
            try:
                message = read_message(ws.recv(timeout=max(end - time.monotonic(), 0.01)))
            except TimeoutError:
                break
            if message["type"] == "records":  # by each record's own process
                for process, text in zip(message["process"], message["message"]):
                    seen.setdefault(str(process), []).append(text)
    result["served"] = seen
sys.stderr.write("FORK-RESULT " + json.dumps(result) + "\n")
sys.stderr.flush()

"""A small ASGI app for uvicorn, whose logging goes to rerun-logging by its log config.

    cd examples/uvicorn_app
    uvicorn app:app --port 8000 --log-config log_config.json
    curl localhost:8000/items/42
    rerun-logging uvicorn.rlg

Nothing in the app knows about rerun-logging: ``log_config.json`` is a dictConfig
that keeps uvicorn's console output and adds a ``RerunHandler``. The access log's
client, method, path and status arrive as the record's arguments; the app's own
records carry extras worth plotting (``latency_ms``).
"""

import logging
import time

log = logging.getLogger("shop.api")


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    started = time.perf_counter()
    path = scope["path"]
    status = 200 if path.startswith("/items/") else 404
    body = f'{{"path": "{path}"}}'.encode() if status == 200 else b'{"error": "not found"}'
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
    latency_ms = (time.perf_counter() - started) * 1000
    level = logging.INFO if status == 200 else logging.WARNING
    log.log(level, "served %s", path, extra={"status": status, "latency_ms": round(latency_ms, 3)})

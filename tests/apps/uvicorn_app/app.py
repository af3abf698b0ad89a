"""An ASGI app for uvicorn: each request logs one record with its id; the lifespan logs
the app's start and stop (the last record of a worker that stops cleanly).

    uvicorn app:app --log-config log_config.json [--workers 2]
    curl 'localhost:8000/?req=1'
"""

import logging
import os
from urllib.parse import parse_qs

log = logging.getLogger("shop.api")


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                log.info("shop starting", extra={"worker": os.getpid()})
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                log.info("shop stopped", extra={"worker": os.getpid()})
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    req = int(parse_qs(scope["query_string"].decode()).get("req", ["-1"])[0])
    log.info("handled request %d", req, extra={"req": req, "worker": os.getpid()})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok\n"})

"""A Flask app for gunicorn: each request logs one record with the request's id.

    APP_SINK=save:gunicorn.rrd APP_BIND=127.0.0.1:8000 gunicorn -c gunicorn.conf.py app:app
    curl 'localhost:8000/?req=1'
"""

import logging
import os

from flask import Flask, request

app = Flask(__name__)
log = logging.getLogger("shop.web")


@app.get("/")
def index() -> tuple[str, int, dict[str, str]]:
    req = int(request.args.get("req", "-1"))
    log.info("handled request %d", req, extra={"req": req, "worker": os.getpid()})
    return "ok\n", 200, {"X-Worker": str(os.getpid())}

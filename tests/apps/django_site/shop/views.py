import logging
import os

from django.http import HttpRequest, HttpResponse

log = logging.getLogger("shop.views")


def item(request: HttpRequest, req: int) -> HttpResponse:
    log.info("served item %d", req, extra={"req": req, "worker": os.getpid()})
    return HttpResponse(f"item {req}\n")

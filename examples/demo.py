"""The demo: a small service that logs structured records and an exception into demo.rlg.

Run it, then read the recording:

    python examples/demo.py && rerun-logging print demo.rlg

``RERUN_LOGGING_SINK`` overrides where it goes; with ``stdout``, standard output is the
recording, so the demo's own words go to standard error:

    RERUN_LOGGING_SINK=stdout python examples/demo.py | rerun-logging print -
"""

from __future__ import annotations

import logging
import random
import sys

from rerun_logging import RerunHandler

log = logging.getLogger("shop")


def handle_order(order_id: int, rng: random.Random) -> None:
    """Pretend to handle an order, logging what a real service would."""
    latency_ms = round(rng.uniform(2, 40), 2)
    log.info(
        "order %d handled", order_id,
        extra={"order_id": order_id, "latency_ms": latency_ms, "queue_depth": rng.randint(0, 9)},
    )
    if latency_ms > 35:
        logging.getLogger("shop.db").warning("slow query for order %d", order_id, extra={"latency_ms": latency_ms})


def main() -> None:
    handler = RerunHandler("save:demo.rlg", application_id="shop-demo")
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    rng = random.Random(7)
    for order_id in range(1, 21):
        handle_order(order_id, rng)
    try:
        {}["missing-sku"]
    except KeyError:
        log.exception("order 21 failed", extra={"order_id": 21, "sku": "missing-sku"})
    logging.shutdown()
    stats = handler.stats
    where = ", ".join(sink.name for sink in stats.sinks)
    print(f"wrote {stats.written} records to {where} (dropped {stats.dropped})", file=sys.stderr)


if __name__ == "__main__":
    main()

"""An app configured by a dictConfig JSON file that names rerun_logging.RerunHandler.

    cd examples/dictconfig && python app.py && rerun-logging print dictconfig-demo.rlg
"""

from __future__ import annotations

import json
import logging
import logging.config
from pathlib import Path

CONFIG = Path(__file__).with_name("logging.json")


def main() -> None:
    logging.config.dictConfig(json.loads(CONFIG.read_text()))
    log = logging.getLogger("inventory.sync")
    log.debug("connecting", extra={"host": "db.local", "port": 5432})
    for batch in range(3):
        log.info("synced batch %d", batch, extra={"items": 100 * (batch + 1)})
    log.warning("batch 3 skipped", extra={"reason": "locked"})
    handler = logging.getLogger().handlers[1]
    logging.shutdown()
    print(f"dictConfig demo: {handler.stats.written} records saved")


if __name__ == "__main__":
    main()

"""An app configured by ``logging.config.fileConfig`` with an ini file.

    cd examples/fileconfig && python app.py && rerun-logging print fileconfig-demo.rlg
"""

from __future__ import annotations

import logging
import logging.config
from pathlib import Path

CONFIG = Path(__file__).with_name("logging.ini")


def main() -> None:
    logging.config.fileConfig(CONFIG, disable_existing_loggers=False)
    log = logging.getLogger("billing")
    log.info("invoice %s sent", "INV-1", extra={"amount_eur": 12.5})
    try:
        raise ValueError("card declined")
    except ValueError:
        log.exception("payment failed", extra={"invoice": "INV-2"})
    logging.shutdown()


if __name__ == "__main__":
    main()

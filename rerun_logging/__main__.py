"""``python -m rerun_logging`` is the ``rerun-logging`` command."""

from .cli import main

raise SystemExit(main())

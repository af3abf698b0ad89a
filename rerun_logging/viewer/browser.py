"""Opening a browser on the web UI: whether to (asked, not in CI, a display), and doing it.

``webbrowser`` is imported only when a browser is opened, and on a thread of its
own: the viewer's start-up (and a spawned viewer's) stays quick, and a browser
that is slow to start never holds the event loop.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Mapping


def can_open_browser(wanted: bool, env: Mapping[str, str] | None = None) -> bool:
    """Whether to open a browser on the web UI: asked to, not in CI, a display to show it on.

    ``CI`` set: never. On Linux and other Unixes a display is needed (``DISPLAY``
    or ``WAYLAND_DISPLAY``); macOS and Windows always have one.
    """
    env = os.environ if env is None else env
    if not wanted or env.get("CI"):
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def open_browser(url: str) -> threading.Thread:
    """Open ``url`` in the user's browser from a daemon thread (returned, started).

    A browser that fails to start is no failure of the viewer: nothing is raised.
    """
    thread = threading.Thread(target=_open, args=(url,), name="open browser", daemon=True)
    thread.start()
    return thread


def _open(url: str) -> None:
    import webbrowser

    try:
        webbrowser.open(url)
    except Exception:  # a browser that fails to start is no failure of the viewer
        pass

"""The page reads binary batches (``static/msgpack.js``, ``batch.js``) in real Chromium
as the Python reference (:func:`~rerun_logging.viewer.feed.read_batch`) reads them, and
what an app logs reaches the page's rows through a real viewer with every value as the
JSON path made it: odd extras and arguments, and a lone surrogate (that batch goes as
JSON). Every wait is on the page's state.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import Page  # noqa: E402

from rerun_logging.format import Record, RecordColumns  # noqa: E402
from rerun_logging.viewer.feed import binary_batch, json_value, read_batch  # noqa: E402

from .conftest import read_messages, run_python  # noqa: E402
from .test_browser_ui import (  # noqa: E402,F401  (the module's Playwright fixtures)
    browser, browser_context_args, browser_type, launch_browser, open_page, playwright, viewers,
)
from .test_viewer_binary import odd_records  # noqa: E402

READ_IN_PAGE = """async (b64) => {
  const { readBatch } = await import("/batch.js");
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const strings = [], ids = new Map();
  const store = { intern(s) { if (!ids.has(s)) { ids.set(s, strings.length); strings.push(s); } return ids.get(s); } };
  const m = readBatch(bytes.buffer, store);
  const text = (column) => Array.from(m[column], (id) => (id >= 0 ? strings[id] : null));
  for (const c of ["level_name", "logger", "entity", "template", "thread_name", "process_name", "task", "path", "function"]) m[c] = text(c);
  for (const c of ["seq", "time", "ns"]) m[c] = Array.from(m[c]);
  delete m.ids;
  if (m.streams === undefined) { delete m.streams; delete m.stream; }
  if (m.args === null) delete m.args;
  if (!m.trace.length) delete m.trace;
  return JSON.stringify(m);
}"""


def read_in_page(page: Page, data: bytes) -> dict[str, Any]:
    return json.loads(page.evaluate(READ_IN_PAGE, base64.b64encode(data).decode()))


def test_the_page_reads_a_binary_batch_as_the_reference_does(page: Page, viewers) -> None:
    _, url = viewers()
    open_page(page, url)
    for records in (odd_records(), [odd_records()[0]] * 3):
        data = binary_batch(RecordColumns.of(records), ("rec", 4242), None)
        assert data is not None
        assert read_in_page(page, data) == read_batch(data)


APP = """
import logging, rerun_logging
h = rerun_logging.RerunHandler(sink="save:" + {path!r}, application_id="odd")
log = logging.getLogger("odd"); log.addHandler(h); log.setLevel(logging.DEBUG); log.propagate = False
log.info("plain %d", 1, extra={{"user": "ada", "n": 3}})
log.info("bytes and numbers", extra={{"raw": b"\\x00it's", "big": 2**64 - 1, "nan": float("nan"), 7: "int key", 1.5: "f"}})
log.warning("args %s %r", b"b", [2**63, 1.5])
log.info("holds \\x1f and \\x00")
log.info("nested", extra={{"deep": {{"a": [1, {{"b": None}}]}}, "__proto__": {{"x": 1}}, "ünï": "ß" * 40}})
log.error("lone \\udcff surrogate")
h.close()
"""


def test_what_an_app_logs_reaches_the_page_as_the_json_path_made_it(page: Page, viewers, tmp_path: Path) -> None:
    path = tmp_path / "odd.rlg"
    result = run_python(APP.format(path=str(path)))
    assert result.returncode == 0, result.stderr
    records = [m for m in read_messages(path) if isinstance(m, Record)]
    assert len(records) == 6
    _, url = viewers(str(path))
    open_page(page, url, total=len(records))
    for i, r in enumerate(records):
        held = json.loads(page.evaluate(f"window.rerunLogging.recordJSON({i})"))
        assert held["message"] == r.message
        assert held["extras"] == (json_value(r.extras) if r.extras else None)
        assert held["args"] == (json_value(r.args) if r.args else None)
    assert records[3].message == "holds \x1f and \x00"
    assert records[5].message == "lone \udcff surrogate"

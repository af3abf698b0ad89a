"""The page shows a record's OpenTelemetry trace and span, and finds the records of each.

A real app logs in real spans (``opentelemetry-sdk``) through a real ``RerunHandler``
into a file; a real viewer serves it to Debian's Chromium (Playwright), as in
``tests/test_browser_ui.py``, whose browser fixtures this module shares.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import run_python

pytest.importorskip("playwright")
pytest.importorskip("opentelemetry.sdk.trace")
from playwright.sync_api import Page, expect  # noqa: E402

from .test_browser_ui import (  # noqa: E402,F401  (fixtures, by name)
    browser, browser_context_args, browser_type, launch_browser, open_page, playwright, viewers,
    wait_shown,
)

TRACED = """
import json, logging, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from rerun_logging import RerunHandler
trace.set_tracer_provider(TracerProvider())
tracer = trace.get_tracer("demo")
h = RerunHandler("save:" + sys.argv[1], application_id="traced")
log = logging.getLogger("app.web"); log.addHandler(h); log.setLevel(logging.INFO); log.propagate = False
spans = []
for i in range(5):
    log.info("idle %d", i)
for r in range(3):
    with tracer.start_as_current_span("request") as request:
        log.info("request %d started", r)
        with tracer.start_as_current_span("query") as query:
            for q in range(4):
                log.info("query %d.%d", r, q)
        log.warning("request %d done", r)
        spans.append([f"{request.get_span_context().trace_id:032x}",
                      f"{request.get_span_context().span_id:016x}",
                      f"{query.get_span_context().span_id:016x}"])
h.close()
print(json.dumps(spans))
"""
TOTAL = 5 + 3 * 6


def test_the_detail_pane_shows_trace_and_span_and_finds_their_records(
    page: Page, viewers, tmp_path: Path, screenshot
) -> None:
    path = tmp_path / "traced.rrd"
    result = run_python(TRACED.replace("sys.argv[1]", repr(str(path))))
    assert result.returncode == 0, result.stderr
    spans = json.loads(result.stdout)
    (trace_1, request_1, query_1) = spans[1]
    _, url = viewers(str(path))
    open_page(page, url, TOTAL)
    wait_shown(page, TOTAL)

    search = page.get_by_test_id("search")
    search.fill("query 1.2")
    wait_shown(page, 1)
    page.get_by_test_id("row").first.click()
    detail = page.get_by_test_id("detail")
    expect(detail.get_by_test_id("detail-message")).to_have_text("query 1.2")
    expect(detail.locator("[data-field='trace id']")).to_contain_text(trace_1)
    expect(detail.locator("[data-field='span id']")).to_contain_text(query_1)
    expect(detail.locator("[data-field='trace flags']")).to_contain_text("sampled")
    screenshot(page, "detail")

    # "find" beside the span id: the four records of that query span
    detail.get_by_test_id("find-span").click()
    expect(search).to_have_value(query_1)
    wait_shown(page, 4)
    # beside the trace id: the six records of that request's trace
    detail.get_by_test_id("find-trace").click()
    expect(search).to_have_value(trace_1)
    wait_shown(page, 6)
    # typed into the box, in capitals: the request span's own two records
    search.fill(request_1.upper())
    wait_shown(page, 2)
    # a record outside any span shows no trace fields
    search.fill("idle 3")
    wait_shown(page, 1)
    page.get_by_test_id("row").first.click()
    expect(detail.get_by_test_id("detail-message")).to_have_text("idle 3")
    expect(detail.locator("[data-field='trace id']")).to_have_count(0)
    search.fill("")
    wait_shown(page, TOTAL)

"""The context view (static/context.js), in a real browser against a real viewer.

Two recording files (two streams), their records interleaved in time. From a row of
a filtered view, "show context" (the detail pane's button, or ``c``) shows the records
before and after it in its own stream only, ignoring the query and the filters, with
the row marked and in view, and a banner; "back" (or Esc) returns to the filtered
view with the same row selected and the same scroll position. Every wait is on the
page's state, never a sleep.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import run_python

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402

from .test_browser_ui import (  # noqa: E402,F401  (the module's Playwright fixtures)
    browser, browser_context_args, browser_type, launch_browser, open_page, playwright, viewers,
    wait_shown,
)

N = 200  # records per stream
TWO_STREAMS = f"""
import logging, sys, rerun_logging
def lg(name, path):
    h = rerun_logging.RerunHandler(sink="save:" + path, application_id=name, recording_id="rec-" + name)
    log = logging.getLogger(name); log.addHandler(h); log.setLevel(logging.DEBUG); log.propagate = False
    return log, h
(alpha, ha), (beta, hb) = lg("alpha", sys.argv[1]), lg("beta", sys.argv[2])
def level(i):
    return logging.WARNING if i % 10 == 0 else logging.DEBUG if i % 3 == 0 else logging.INFO
for i in range({N}):  # the two files' records alternate in time
    alpha.log(level(i), "alpha %d", i)
    beta.log(level(i), "beta %d", i)
ha.close()
hb.close()
"""

SHOWN = "window.rerunLogging.shownRows(0, 100000).map((i) => window.rerunLogging.message(i))"
FIRST_ROW = "document.querySelector('[data-testid=row]:not([hidden])').getAttribute('data-row')"


def level(i: int) -> str:
    return "WARNING" if i % 10 == 0 else "DEBUG" if i % 3 == 0 else "INFO"


@pytest.fixture(scope="module")
def two_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("context")
    a, b = d / "alpha.rlg", d / "beta.rlg"
    code = TWO_STREAMS.replace("sys.argv[1]", repr(str(a))).replace("sys.argv[2]", repr(str(b)))
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    return a, b


@pytest.fixture
def ctx_page(page: Page, viewers, two_files: tuple[Path, Path]) -> Page:
    _, url = viewers(*map(str, two_files))
    open_page(page, url, 2 * N)
    wait_shown(page, 2 * N)
    return page


def search(page: Page, query: str, shown: int) -> None:
    page.get_by_test_id("search").fill(query)
    wait_shown(page, shown)
    page.get_by_test_id("rows").focus()


def row_of(page: Page, message: str) -> int:
    return page.evaluate(
        "(m) => { const api = window.rerunLogging; for (let i = 0; i < api.total(); i++) "
        "if (api.message(i) === m) return i; return -1; }", message)


def test_context_from_a_filtered_row_and_back(ctx_page: Page, screenshot) -> None:
    page = ctx_page
    warnings = [f"{app} {i}" for i in range(0, N, 10) for app in ("alpha", "beta")]
    search(page, "level>=warning", len(warnings))
    assert page.evaluate(SHOWN) == warnings
    page.get_by_test_id("row").filter(has_text=re.compile(r"^.*alpha 100$")).click()
    expect(page.get_by_test_id("detail-message")).to_have_text("alpha 100")
    expect(page.get_by_test_id("context-banner")).to_be_hidden()
    page.get_by_test_id("show-context").click()
    # 50 before and 50 after in alpha's stream, whatever the level: no beta, no filter
    wait_shown(page, 101)
    assert page.evaluate(SHOWN) == [f"alpha {i}" for i in range(50, 151)]
    banner = page.get_by_test_id("context-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("50 before and 50 after")
    expect(banner).to_contain_text("rec-alpha")
    marked = page.locator("[data-testid=row].ctx")
    expect(marked).to_have_count(1)
    expect(marked).to_contain_text("alpha 100")
    expect(marked).to_be_in_viewport()
    expect(page.get_by_test_id("detail-message")).to_have_text("alpha 100")
    assert page.evaluate("window.rerunLogging.timings.contextMs") < 50
    screenshot(page, "context-view")
    # back: the filtered rows, the same row selected, no banner, no mark
    page.get_by_test_id("context-back").click()
    wait_shown(page, len(warnings))
    assert page.evaluate(SHOWN) == warnings
    expect(banner).to_be_hidden()
    expect(page.locator("[data-testid=row].ctx")).to_have_count(0)
    expect(page.get_by_test_id("detail-message")).to_have_text("alpha 100")
    assert page.evaluate("window.rerunLogging.selected()") == row_of(page, "alpha 100")


def test_context_key_size_and_escape_keep_the_scroll_position(ctx_page: Page) -> None:
    page = ctx_page
    shown = [f"{app} {i}" for i in range(N) for app in ("alpha", "beta") if level(i) != "DEBUG"]
    search(page, "-level:debug", len(shown))
    page.evaluate("window.rerunLogging.scrollToRow(120)")
    page.wait_for_function(f"{FIRST_ROW} !== null && window.rerunLogging.shownRows(120, 121)[0] === Number({FIRST_ROW})")
    top, scroll = page.evaluate(f"[{FIRST_ROW}, document.querySelector('[data-testid=rows]').scrollTop]")
    target = page.get_by_test_id("row").nth(5)
    message = target.locator(".c-msg").text_content()
    app, k = message.split()
    target.click()
    page.get_by_test_id("rows").focus()
    page.keyboard.press("c")
    # the first rows of the stream have fewer before them; its own stream only
    k = int(k)
    expected = [f"{app} {i}" for i in range(max(0, k - 50), min(N, k + 51))]
    wait_shown(page, len(expected))
    assert page.evaluate(SHOWN) == expected
    expect(page.locator("[data-testid=row].ctx")).to_contain_text(message)
    # N is adjustable
    page.get_by_test_id("context-size").select_option("10")
    wait_shown(page, len([i for i in range(max(0, k - 10), min(N, k + 11))]))
    assert page.evaluate(SHOWN) == [f"{app} {i}" for i in range(max(0, k - 10), min(N, k + 11))]
    expect(page.get_by_test_id("context-banner")).to_contain_text("10 before and 10 after")
    expect(page.locator("[data-testid=row].ctx")).to_be_in_viewport()
    # j / k move the selection inside the context; Esc goes back to the filtered view
    page.get_by_test_id("rows").focus()
    page.keyboard.press("j")
    expect(page.get_by_test_id("detail-message")).to_have_text(f"{app} {k + 1}")
    page.keyboard.press("k")
    expect(page.get_by_test_id("detail-message")).to_have_text(message)
    page.keyboard.press("Escape")
    wait_shown(page, len(shown))
    expect(page.get_by_test_id("context-banner")).to_be_hidden()
    page.wait_for_function(f"{FIRST_ROW} === {top!r}")
    assert page.evaluate("document.querySelector('[data-testid=rows]').scrollTop") == scroll
    expect(page.get_by_test_id("detail-message")).to_have_text(message)
    # Esc again clears the selection
    page.keyboard.press("Escape")
    page.wait_for_function("window.rerunLogging.selected() === -1")


def test_records_arriving_in_context_view_show_on_the_way_back(ctx_page: Page) -> None:
    page = ctx_page
    search(page, "level>=warning", 2 * N // 10)
    row = row_of(page, "beta 40")
    page.evaluate(f"window.rerunLogging.select({row})")
    page.evaluate(f"window.rerunLogging.showContext({row}, 5)")
    wait_shown(page, 11)
    assert page.evaluate(SHOWN) == [f"beta {i}" for i in range(35, 46)]
    page.evaluate("""() => window.rerunLogging.inject({type: "records", recording: "late", pid: 9, reset: true,
        strings: ["ERROR", "late.logger", "/late/logger", "late.py"],
        seq: [0], time: [Date.now()], ns: [0], level: [40], level_name: [0],
        logger: [1], entity: [2], message: ["late error"], template: [null], extras: [null],
        thread: [1], thread_name: [null], process: [9], process_name: [null], task: [null],
        path: [3], line: [1], function: [null], exception: [], stack: []})""")
    page.wait_for_function(f"window.rerunLogging.total() === {2 * N + 1}")
    assert page.evaluate("window.rerunLogging.shown()") == 11  # the context stays as it is
    page.get_by_test_id("context-back").click()
    wait_shown(page, 2 * N // 10 + 1)
    assert "late error" in page.evaluate(SHOWN)
    expect(page.get_by_test_id("detail-message")).to_have_text("beta 40")


def test_c_without_a_selection_says_so(ctx_page: Page) -> None:
    page = ctx_page
    page.get_by_test_id("rows").focus()
    page.keyboard.press("c")
    expect(page.get_by_test_id("flash").last).to_contain_text("Select a row first")
    expect(page.get_by_test_id("context-banner")).to_be_hidden()
    assert page.evaluate("window.rerunLogging.context()") is None

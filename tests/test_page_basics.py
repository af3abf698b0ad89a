"""The page's basics (issue 14, item 6), in a real browser against a real viewer.

Two recording files of two apps, three hours apart, opened together: the merged view's
app and pid columns and its colour per recording (rows and sidebar); one recording
selected counts its own levels and loggers; columns resized and moved by dragging,
kept across a reload; the tooltip of a cut logger name; the plot's own choice of extra,
its round ticks and hover readout; zooming into a time range by dragging on the
timeline or the plot and out by double-clicking; the collapsed gap between the two
recordings; a level turned off shown struck through; a long message that leaves the
detail pane's fields in view. Every wait is on the page's state, never a sleep.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402

from .conftest import run_python  # noqa: E402
from .test_browser_ui import (  # noqa: E402,F401  (the module's Playwright fixtures)
    browser, browser_context_args, browser_type, launch_browser, open_page, playwright,
    viewers, wait_shown,
)

LONG = "shop.backend.payments.providers.stripe.webhooks.handlers.v2"
HOURS = 3

TWO_APPS = f"""
import logging, sys, time, rerun_logging
def lg(app, path, name, shift):
    h = rerun_logging.RerunHandler(sink="save:" + path, application_id=app, recording_id="rec-" + app)
    log = logging.getLogger(name); log.addHandler(h); log.setLevel(logging.DEBUG); log.propagate = False
    def back(record):
        record.created -= shift
        return True
    log.addFilter(back)
    return log, h
beta, hb = lg("beta", sys.argv[2], "beta.web", {HOURS} * 3600)  # three hours before alpha
for i in range(25):
    beta.info("page %d", i, extra={{"latency_ms": 100 + i}})
    time.sleep(0.002)  # each recording lasts a while: its span is drawn in proportion
for i in range(5):
    beta.error("page %d failed", i)
hb.close()
alpha, ha = lg("alpha", sys.argv[1], "alpha.db", 0)
for i in range(50):
    alpha.info("query %d", i, extra={{"n": i, "status": 200, "latency_ms": (i * 7) % 40 + 0.5}})
    time.sleep(0.002)
alpha.info("\\n".join(f"line {{k}} of a long message" for k in range(300)))
ha.close()
lng, hl = lg("alpha", sys.argv[1], {LONG!r}, 0)
for i in range(10):
    lng.warning("webhook %d retried", i)
hl.close()
"""
TOTAL = 25 + 5 + 50 + 1 + 10
API = "window.rerunLogging"


@pytest.fixture
def two_apps(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "alpha.rlg", tmp_path / "beta.rlg"
    code = TWO_APPS.replace("sys.argv[1]", repr(str(a))).replace("sys.argv[2]", repr(str(b)))
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    return a, b


def drag(page: Page, x0: float, y0: float, x1: float, y1: float) -> None:
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=3)
    page.mouse.move(x1, y1, steps=3)
    page.mouse.up()


def is_round(step: float) -> bool:
    """1, 2 or 5 times a power of ten."""
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    return any(abs(mantissa - m) < 1e-6 for m in (1, 2, 5))


def test_merged_columns_colours_and_counts(page: Page, viewers, two_apps, screenshot) -> None:
    _, url = viewers(*map(str, two_apps))
    open_page(page, url, TOTAL)
    wait_shown(page, TOTAL)
    page.wait_for_function(f"{API}.columns().some((c) => c.id === 'app')")
    ids = [c["id"] for c in page.evaluate(f"{API}.columns()")]
    assert ids[:5] == ["time", "level", "app", "pid", "logger"] and ids[-1] == "msg"
    heads = page.locator("#thead [data-col]")
    expect(heads.filter(has_text="App")).to_have_count(1)
    expect(heads.filter(has_text="PID")).to_have_count(1)
    rows = page.get_by_test_id("row")
    expect(rows.first.locator(".c-app")).to_have_text("alpha")  # following: alpha's are the newest
    expect(rows.first.locator(".c-pid")).to_have_text(re.compile(r"^\d+$"))
    # one colour per recording: on its rows and beside it in the sidebar
    swatches = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('[data-testid=recording]')]
        .map((li) => [li.querySelector('.appname').textContent,
                      getComputedStyle(li.querySelector('[data-testid=recording-color]')).backgroundColor]))""")
    assert set(swatches) == {"alpha", "beta"} and swatches["alpha"] != swatches["beta"]
    page.evaluate(f"{API}.scrollToRow(0)")
    expect(rows.first.locator(".c-app")).to_have_text("beta")  # three hours earlier: first in time
    page.evaluate(f"{API}.scrollToRow(20)")  # beta's last rows, then alpha's
    expect(rows.first).to_contain_text("page 20")
    marks = page.evaluate("""() => [...document.querySelectorAll('[data-testid=row]:not([hidden])')].map((r) =>
        [r.querySelector('.c-app').textContent, getComputedStyle(r.querySelector('.c-mark')).backgroundColor])""")
    assert {app for app, _ in marks} == {"alpha", "beta"}
    for app, colour in marks:
        assert colour == swatches[app], (app, colour)
    screenshot(page, "merged")
    expect(page.get_by_test_id("level-INFO").locator(".n")).to_have_text("76")
    # one recording selected: the level buttons and the logger tree count it only
    page.get_by_test_id("recording").filter(has_text="beta").click()
    wait_shown(page, 30)
    expect(page.get_by_test_id("level-INFO").locator(".n")).to_have_text("25")
    expect(page.get_by_test_id("level-ERROR").locator(".n")).to_have_text("5")
    expect(page.get_by_test_id("level-WARNING").locator(".n")).to_have_text("0")
    tree = page.get_by_test_id("tree")
    expect(tree.locator("[data-path='/']")).to_contain_text("30")
    expect(tree.locator("[data-path='/beta/web']")).to_contain_text("30")
    expect(tree.locator("[data-path='/alpha/db']")).to_have_class(re.compile(r"\bnone\b"))
    expect(page.locator("#thead [data-col=app]")).to_have_count(0)  # one recording: no app column
    # ... and the time axis spans that recording only
    axis = page.evaluate(f"{API}.timeAxis()")
    beta_times = page.evaluate(f"{API}.shownRows(0, 100).map((i) => {API}.timeOf(i))")
    assert axis["gaps"] == [] and axis["domain"][1] - axis["domain"][0] < 60_000
    assert axis["domain"][0] <= min(beta_times) and max(beta_times) <= axis["domain"][1]
    page.get_by_test_id("recording-all").click()
    wait_shown(page, TOTAL)
    expect(page.get_by_test_id("level-INFO").locator(".n")).to_have_text("76")
    expect(tree.locator("[data-path='/']")).to_contain_text(str(TOTAL))


def test_columns_resized_and_moved_survive_a_reload(page: Page, viewers, two_apps, screenshot) -> None:
    _, url = viewers(*map(str, two_apps))
    open_page(page, url, TOTAL)
    wait_shown(page, TOTAL)
    page.evaluate("localStorage.removeItem('rerun-logging.columns')")
    page.reload()
    open_page(page, url, TOTAL)
    page.wait_for_function(f"{API}.columns().some((c) => c.id === 'app')")
    logger = page.locator("#thead [data-col=logger]")
    width0 = logger.bounding_box()["width"]
    grip = logger.get_by_test_id("col-resize").bounding_box()
    gx, gy = grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2
    drag(page, gx, gy, gx + 90, gy)
    page.wait_for_function(f"{API}.columns().find((c) => c.id === 'logger').width >= {width0 + 85}")
    cell = page.get_by_test_id("row").first.locator(".c-logger")
    assert abs(cell.bounding_box()["width"] - logger.bounding_box()["width"]) < 1.5  # rows follow the header
    # drag the Logger header onto Time: it moves first
    src, dst = logger.bounding_box(), page.locator("#thead [data-col=time]").bounding_box()
    drag(page, src["x"] + 20, src["y"] + src["height"] / 2, dst["x"] + 10, dst["y"] + dst["height"] / 2)
    page.wait_for_function(f"{API}.columns()[0].id === 'logger'")
    expect(page.get_by_test_id("row").first.locator("span").nth(1)).to_have_class(re.compile("c-logger"))
    before = page.evaluate(f"{API}.columns()")
    page.reload()
    open_page(page, url, TOTAL)
    page.wait_for_function(f"{API}.columns().some((c) => c.id === 'app')")
    assert page.evaluate(f"{API}.columns()") == before
    assert abs(page.locator("#thead [data-col=logger]").bounding_box()["width"] - before[0]["width"]) < 1.5
    expect(page.locator("#thead [data-col]").first).to_have_attribute("data-col", "logger")
    # a cut logger name keeps its full text in the tooltip
    wait_shown(page, TOTAL)
    cut = page.evaluate("""() => [...document.querySelectorAll('[data-testid=row]:not([hidden]) .c-logger')]
        .filter((c) => c.scrollWidth > c.clientWidth).map((c) => [c.textContent, c.title])""")
    assert cut and all(text == LONG and title == LONG for text, title in cut), cut
    screenshot(page, "columns")
    page.evaluate("localStorage.removeItem('rerun-logging.columns')")


def test_plot_zoom_and_time_axis(page: Page, viewers, two_apps, screenshot) -> None:
    _, url = viewers(*map(str, two_apps))
    open_page(page, url, TOTAL)
    wait_shown(page, TOTAL)
    # the plot picks latency_ms by its name (before n, status) and draws it on round ticks
    page.wait_for_function(f"{API}.plot().key === 'latency_ms' && {API}.plot().count === 75")
    plot = page.evaluate(f"{API}.plot()")
    assert plot["auto"] is True
    assert is_round(plot["yStep"]), plot
    assert all(abs(v / plot["yStep"] - round(v / plot["yStep"])) < 1e-6 for v in plot["yTicks"])
    assert len(plot["yTicks"]) >= 3
    # the time axis: the three hours between the recordings collapsed into a break,
    # round ticks on a whole-second (or larger) step, shared by the timeline and the plot
    axis = page.evaluate(f"{API}.timeAxis()")
    assert len(axis["gaps"]) == 1 and axis["gaps"][0][1] - axis["gaps"][0][0] > (HOURS - 0.1) * 3600e3
    busy = [s for s in axis["segments"] if not s["gap"]]
    assert len(busy) == 2 and all(s["x1"] - s["x0"] > 100 for s in busy), busy  # neither squashed to an edge
    assert all(k >= 5 for k in axis["busyBins"]), axis["busyBins"]  # each recording's bars spread over its span
    assert axis["step"] in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3)
    assert all(t["t"] % axis["step"] == 0 for t in axis["ticks"]) and len(axis["ticks"]) >= 2
    assert plot["xTicks"] == [t["t"] for t in axis["ticks"]]
    assert plot["domain"] == axis["domain"]
    timeline = page.get_by_test_id("timeline").bounding_box()
    canvas = page.get_by_test_id("plot").bounding_box()
    assert abs(timeline["x"] - canvas["x"]) < 1 and abs(timeline["width"] - canvas["width"]) < 1
    # hover readout: the value and time of the nearest point
    alpha_seg = busy[1]
    page.mouse.move(canvas["x"] + (alpha_seg["x0"] + alpha_seg["x1"]) / 2, canvas["y"] + canvas["height"] / 2)
    readout = page.get_by_test_id("plot-readout")
    expect(readout).to_be_visible()
    expect(readout).to_contain_text(re.compile(r"latency_ms = [\d.]+ at \d\d:\d\d:\d\d\.\d{3}"))
    screenshot(page, "plot")
    # drag on the timeline: zoom into alpha's span (its rows only, the axis on that range)
    y = timeline["y"] + timeline["height"] / 2
    drag(page, timeline["x"] + alpha_seg["x0"] + 1, y, timeline["x"] + alpha_seg["x1"] - 1, y)
    page.wait_for_function(f"{API}.timeAxis().zoomDepth === 1 && {API}.shown() === 61")
    zoomed = page.evaluate(f"{API}.timeAxis()")
    assert zoomed["domain"][1] - zoomed["domain"][0] < 60_000 and zoomed["gaps"] == []
    expect(page.get_by_test_id("timeline-clear")).to_be_visible()
    # drag on the plot: zoom further, into its left half
    page.wait_for_function(f"{API}.plot().domain[0] === {zoomed['domain'][0]}")
    yp = canvas["y"] + canvas["height"] / 2
    drag(page, canvas["x"] + 50, yp, canvas["x"] + canvas["width"] / 2, yp)
    page.wait_for_function(f"{API}.timeAxis().zoomDepth === 2 && {API}.shown() < 61 && {API}.shown() > 0")
    deeper = page.evaluate(f"{API}.timeAxis()")
    assert zoomed["domain"][0] <= deeper["domain"][0] < deeper["domain"][1] <= zoomed["domain"][1]
    screenshot(page, "zoomed")
    # double-click zooms out one step at a time
    page.get_by_test_id("plot").dblclick()
    page.wait_for_function(f"{API}.timeAxis().zoomDepth === 1 && {API}.shown() === 61")
    page.get_by_test_id("timeline").dblclick()
    page.wait_for_function(f"{API}.timeAxis().zoomDepth === 0")
    wait_shown(page, TOTAL)
    page.wait_for_function(f"{API}.timeAxis().gaps.length === 1")
    assert page.evaluate(f"{API}.timeAxis()")["domain"] == axis["domain"]
    expect(page.get_by_test_id("timeline-clear")).to_be_hidden()
    # the user's choice of extra sticks
    page.get_by_test_id("plot-select").select_option("status")
    page.wait_for_function(f"{API}.plot().key === 'status' && !{API}.plot().auto")


def test_level_off_and_long_message(page: Page, viewers, two_apps, screenshot) -> None:
    _, url = viewers(*map(str, two_apps))
    open_page(page, url, TOTAL)
    wait_shown(page, TOTAL)
    info = page.get_by_test_id("level-INFO")
    info.click()
    wait_shown(page, TOTAL - 76)
    expect(info).to_have_attribute("aria-pressed", "false")
    style = info.evaluate("""(b) => ({opacity: +getComputedStyle(b).opacity,
        line: getComputedStyle(b.querySelector('.name')).textDecorationLine, title: b.title})""")
    assert "line-through" in style["line"] and style["opacity"] < 0.8 and style["title"].startswith("Hiding")
    on = page.get_by_test_id("level-ERROR").evaluate("(b) => getComputedStyle(b.querySelector('.name')).textDecorationLine")
    assert "line-through" not in on
    screenshot(page, "level-off")
    info.click()
    wait_shown(page, TOTAL)
    expect(info).to_have_attribute("aria-pressed", "true")
    # a 300-line message: the box scrolls, the fields below stay in view
    page.get_by_test_id("search").fill("long message")
    wait_shown(page, 1)
    page.get_by_test_id("row").first.click()
    message = page.get_by_test_id("detail-message")
    expect(message).to_contain_text("line 299 of a long message")
    assert message.evaluate("(m) => m.scrollHeight > m.clientHeight + 100")
    logger = page.get_by_test_id("detail").locator("dd[data-field=logger]")
    expect(logger).to_have_text("alpha.db")
    box, viewport = logger.bounding_box(), page.viewport_size
    assert box is not None and viewport is not None and box["y"] + box["height"] < viewport["height"]
    screenshot(page, "long-message")

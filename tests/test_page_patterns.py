"""Patterns: the rows shown grouped by message template (static/patterns.js), in a real browser.

A real viewer holds a recording of records logged with a few templates (one in two
spellings of case, one on two lines, one with quotes and a star, one with a colon) and
some whose ``msg`` is no string (they group by their message). The patterns panel lists
each with its count, its counts per level and a sparkline, by count, checked against
what the records say; it follows the query; a click adds ``template:"..."`` to the
search box (Alt-click: ``-template:"..."``) and the rows shown are exactly that
pattern's. Every wait is on the page's state, never a sleep.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402

from .test_browser_ui import (  # noqa: E402,F401  (the module's Playwright fixtures)
    browser, browser_context_args, browser_type, launch_browser, make_recording, open_page,
    playwright, viewers, wait_shown,
)
from . import test_page_query as query_page  # noqa: E402

D, I, W, E = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR
NAMES = {D: "DEBUG", I: "INFO", W: "WARNING", E: "ERROR"}

# (level, msg, args): msg a template, or a number (no template: grouped by its message)
CALLS: list[tuple[int, Any, tuple[Any, ...]]] = (
    [(I, "order %d handled", (k,)) for k in range(12)]
    + [(W, "order %d handled", (k,)) for k in range(3)]
    + [(I, "Order %d HANDLED", (k,)) for k in range(2)]
    + [(W, "slow %s took %.1f ms", ("db", k * 1.5)) for k in range(6)]
    + [(E, "plain message, no args", ()) for _ in range(4)]
    + [(D, "line one\nline two %d", (k,)) for k in range(3)]
    + [(I, 'quoted "x" and star*', ()) for _ in range(2)]
    + [(I, 42, ()) for _ in range(5)]
    + [(E, 43, ())]
    + [(W, "user %s: logged in", ("ann",))]
)
# interleaved, as an app would log them
ORDER = sorted(range(len(CALLS)), key=lambda k: (k * 7919) % len(CALLS))
RECORDS = [CALLS[k] for k in ORDER]
TOTAL = len(RECORDS)

RECORDING = f"""
import logging, sys, rerun_logging
h = rerun_logging.RerunHandler(sink="save:" + sys.argv[1], application_id="patterndemo")
log = logging.getLogger("shop"); log.addHandler(h); log.setLevel(logging.DEBUG); log.propagate = False
for level, msg, args in {RECORDS!r}:
    log.log(level, msg, *args)
h.close()
"""

SHOWN = query_page.SHOWN


def message(msg: Any, args: tuple[Any, ...]) -> str:
    return str(msg) % args if args else str(msg)


def key(msg: Any) -> str:
    """The pattern's text: the template, or the message; a line break as a space."""
    return str(msg).replace("\n", " ")


def patterns(records: list[tuple[int, Any, tuple[Any, ...]]]) -> dict[str, dict[str, Any]]:
    """Lowercase pattern -> {text (first seen), count, levels}."""
    out: dict[str, dict[str, Any]] = {}
    for level, msg, _ in records:
        p = out.setdefault(key(msg).lower(), {"text": key(msg), "count": 0, "levels": Counter()})
        p["count"] += 1
        p["levels"][NAMES[level]] += 1
    return out


@pytest.fixture(scope="module")
def patterns_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_recording(RECORDING, tmp_path_factory.mktemp("patterns") / "patterns.rlg")


@pytest.fixture
def patterns_page(page: Page, viewers, patterns_file: Path) -> Page:
    _, url = viewers(str(patterns_file))
    open_page(page, url, TOTAL)
    wait_shown(page, TOTAL)
    return page


def expect_rows(page: Page, messages: list[str]) -> None:
    query_page.expect_rows(page, messages, TOTAL)


def messages_where(pred) -> list[str]:
    return [message(m, a) for lv, m, a in RECORDS if pred(lv, m)]


LISTED = """() => [...document.querySelectorAll("[data-testid=patterns] [data-testid=pattern]")].map((li) => ({
  text: li.querySelector("[data-testid=pattern-text]").textContent, count: Number(li.dataset.count),
  shown: li.querySelector("[data-testid=pattern-count]").textContent,
  levels: Object.fromEntries([...li.querySelectorAll("[data-level]")].map((c) => [c.dataset.level, Number(c.textContent)])),
  bars: li.querySelectorAll("svg.spark path").length,
}))"""


def expect_patterns(page: Page, records: list[tuple[int, Any, tuple[Any, ...]]]) -> list[dict[str, Any]]:
    """The panel lists exactly the patterns of `records`, by count, with their level counts."""
    want = patterns(records)
    page.wait_for_function(f"(n) => ({LISTED})().length === n && ({LISTED})().reduce((s, p) => s + p.count, 0) === "
                           f"{len(records)}", arg=len(want))
    got = page.evaluate(LISTED)
    counts = [p["count"] for p in got]
    assert counts == sorted(counts, reverse=True), counts
    assert {p["text"].lower(): p["count"] for p in got} == {k: v["count"] for k, v in want.items()}
    for p in got:
        w = want[p["text"].lower()]
        assert p["text"] == w["text"], (p, w)  # the first spelling seen
        assert p["shown"] == str(w["count"])
        assert p["levels"] == dict(w["levels"]), (p, w)
        assert p["bars"] == 1
    return got


def click_pattern(page: Page, text: str, **kwargs: Any) -> None:
    item = page.get_by_test_id("patterns").get_by_test_id("pattern").filter(
        has=page.get_by_test_id("pattern-text").get_by_text(text, exact=True))
    expect(item).to_have_count(1)
    item.get_by_test_id("pattern-text").click(**kwargs)


def test_patterns_group_the_rows_shown(patterns_page: Page, screenshot) -> None:
    page = patterns_page
    panel = page.get_by_test_id("patterns")
    expect(panel).to_be_hidden()
    page.get_by_test_id("patterns-toggle").click()
    expect(panel).to_be_visible()
    got = expect_patterns(page, RECORDS)
    assert got[0]["text"] == "order %d handled" and got[0]["count"] == 17
    expect(page.get_by_test_id("patterns-info")).to_contain_text(f"{len(got)} patterns in {TOTAL} rows")
    # the data behind it: every record in one time bucket of its pattern's sparkline, and one level
    data = page.evaluate("window.rerunLogging.patterns()")
    for p in data["patterns"]:
        assert sum(p["spark"]) == p["count"] == sum(p["levels"]), p
    assert data["total"] == len(got) and data["shown"] == TOTAL
    screenshot(page, "patterns")
    # it follows the query
    page.get_by_test_id("search").fill("level>=warning")
    shown = [r for r in RECORDS if r[0] >= W]
    expect_rows(page, [message(m, a) for _, m, a in shown])
    expect_patterns(page, shown)
    page.get_by_test_id("level-ERROR").click()
    shown = [r for r in RECORDS if r[0] == W]
    expect_rows(page, [message(m, a) for _, m, a in shown])
    expect_patterns(page, shown)
    page.get_by_test_id("patterns-toggle").click()
    expect(panel).to_be_hidden()


@pytest.mark.parametrize("text, term", [
    ("order %d handled", 'template:"order %d handled"'),
    ("slow %s took %.1f ms", 'template:"slow %s took %.1f ms"'),
    ("plain message, no args", 'template:"plain message, no args"'),
    ("line one line two %d", 'template:"line one line two %d"'),
    ('quoted "x" and star*', r'template:"quoted \"x\" and star*"'),
    ("42", "template:42"),
    ("user %s: logged in", 'template:"user %s: logged in"'),
])
def test_a_click_on_a_pattern_filters_to_it(patterns_page: Page, text: str, term: str) -> None:
    page = patterns_page
    page.get_by_test_id("patterns-toggle").click()
    expect_patterns(page, RECORDS)
    click_pattern(page, text)
    search = page.get_by_test_id("search")
    expect(search).to_have_value(term)
    mine = [r for r in RECORDS if key(r[1]).lower() == text.lower()]
    expect_rows(page, [message(m, a) for _, m, a in mine])
    expect_patterns(page, mine)
    # Alt-click: every other pattern
    click_pattern(page, patterns(mine)[text.lower()]["text"], modifiers=["Alt"])
    expect(search).to_have_value("-" + term)
    rest = [r for r in RECORDS if key(r[1]).lower() != text.lower()]
    expect_rows(page, [message(m, a) for _, m, a in rest])
    expect_patterns(page, rest)


def test_template_terms_typed_and_with_other_terms(patterns_page: Page) -> None:
    page = patterns_page
    search = page.get_by_test_id("search")
    page.get_by_test_id("patterns-toggle").click()
    search.fill("level:info")
    expect_rows(page, messages_where(lambda lv, m: lv == I))
    click_pattern(page, "order %d handled")
    expect(search).to_have_value('level:info template:"order %d handled"')
    expect_rows(page, messages_where(lambda lv, m: lv == I and key(m).lower() == "order %d handled"))
    # the "−" button excludes, in place
    item = page.get_by_test_id("pattern").filter(has=page.get_by_text("order %d handled", exact=True))
    item.hover()
    item.get_by_test_id("exclude").click()
    expect(search).to_have_value('level:info -template:"order %d handled"')
    expect_rows(page, messages_where(lambda lv, m: lv == I and key(m).lower() != "order %d handled"))
    # typed: a prefix, and the case does not matter
    search.fill("template:order*")
    expect_rows(page, messages_where(lambda lv, m: key(m).lower().startswith("order")))
    search.fill('template:"ORDER %D HANDLED"')
    expect_rows(page, messages_where(lambda lv, m: key(m).lower() == "order %d handled"))
    search.fill("template>3")
    expect(page.get_by_test_id("query-error")).to_contain_text("template cannot be compared")
    # the help says it
    page.get_by_test_id("query-help-button").click()
    expect(page.get_by_test_id("query-help")).to_contain_text('template:"order %d handled"')
    page.keyboard.press("Escape")

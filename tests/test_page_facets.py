"""Facets and click-to-filter on values (static/facets.js), in a real browser.

A real viewer holds a recording of varied records (values with spaces, quotes, colons,
stars, a key that is not a plain name, numbers, booleans, null). The facets panel lists
each field's values with their counts, checked against what the records say, and
follows the query; a click on a value (in the panel, the detail pane, the table) adds
``field:value`` to the search box, Alt-click or the "−" button ``-field:value``; the
rows shown are then exactly those the records say. Every wait is on the page's state.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import Locator, Page, expect  # noqa: E402

from .test_browser_ui import (  # noqa: E402,F401  (the module's Playwright fixtures)
    browser, browser_context_args, browser_type, launch_browser, make_recording, open_page,
    playwright, viewers, wait_shown,
)
from . import test_page_query as query_page  # noqa: E402

D, I, W, E = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR

ODD = ['Ann Lee', 'say "hi"', "a:b", "x*", "back\\slash", "", "-dash", "ann"]
USERS = [0] * 9 + [1] * 7 + [2] * 6 + [3] * 5 + [4] * 4 + [5] * 3 + [6] * 2 + [7] * 4  # 40, uneven
RECORDS: list[tuple[str, int, str, dict[str, Any] | None]] = []
for k in range(40):
    extras: dict[str, Any] = {"user": ODD[USERS[k]], "status": [200, 200, 500][k % 3], "n": k}
    if k % 3 == 0:
        extras["cached"] = k % 2 == 0
    if k % 5 == 0:
        extras["request-id"] = f"r-{k % 2}"
    if k % 7 == 0:
        extras["note"] = None
    if k % 9 == 0:
        extras["obj"] = {"a": k}
    logger = ["shop.db", "shop.api", "auth", "odd logger*"][k % 4]
    level = [I, I, W, E, D][k % 5]
    RECORDS.append((logger, level, f"event {k}", extras))
RECORDS.append(("auth", I, "no extras", None))
TOTAL = len(RECORDS)

RECORDING = f"""
import logging, sys, rerun_logging
h = rerun_logging.RerunHandler(sink="save:" + sys.argv[1], application_id="facetdemo")
for name, level, message, extras in {RECORDS!r}:
    log = logging.getLogger(name); log.addHandler(h); log.setLevel(logging.DEBUG); log.propagate = False
    log.log(level, "%s", message, extra=extras)
h.close()
"""

SHOWN = query_page.SHOWN
LEVEL_NAMES = {D: "DEBUG", I: "INFO", W: "WARNING", E: "ERROR"}


def where(pred) -> list[str]:
    return [m for lg, lv, m, ex in RECORDS if pred(lg, lv, ex or {})]


@pytest.fixture(scope="module")
def facets_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_recording(RECORDING, tmp_path_factory.mktemp("facets") / "facets.rlg")


@pytest.fixture
def facets_page(page: Page, viewers, facets_file: Path) -> Page:
    _, url = viewers(str(facets_file))
    open_page(page, url, TOTAL)
    wait_shown(page, TOTAL)
    return page


def expect_rows(page: Page, messages: list[str]) -> None:
    query_page.expect_rows(page, messages, TOTAL)


def facet(page: Page, field: str) -> Locator:
    return page.get_by_test_id("facets").locator(f"[data-testid=facet][data-field='{field}']")


def facet_counts(page: Page, field: str) -> dict[str, int]:
    """The values and counts the panel lists for `field` (waits for the facet)."""
    expect(facet(page, field)).to_have_count(1)
    return page.evaluate("""(field) => {
      const box = document.querySelector(`[data-testid=facets] [data-testid=facet][data-field="${field}"]`);
      return Object.fromEntries([...box.querySelectorAll("[data-testid=facet-value]")].map(
        (li) => [li.querySelector(".facet-text").textContent, Number(li.dataset.count)]));
    }""", field)


def expected(values: list[Any], n: int = 8) -> dict[str, int]:
    """The top `n` values as the panel writes them, with their counts."""
    def text(v: Any) -> str:
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        return '""' if v == "" else str(v)
    c = Counter(values)
    top = sorted(c.items(), key=lambda kv: -kv[1])[:n]
    return {text(v): k for v, k in top}


def expect_facet(page: Page, field: str, values: list[Any], n: int = 8) -> None:
    want = expected(values, n)
    # ties at the cut may pick either value: compare the counts, and every value whose count is above the cut
    page.wait_for_function("""([field, want]) => {
      const box = document.querySelector(`[data-testid=facets] [data-testid=facet][data-field="${field}"]`);
      if (!box) return false;
      const got = [...box.querySelectorAll("[data-testid=facet-value]")].map(
        (li) => [li.querySelector(".facet-text").textContent, Number(li.dataset.count)]);
      const counts = got.map((g) => g[1]).join(), wantCounts = Object.values(want).join();
      const min = Math.min(...Object.values(want));
      return counts === wantCounts && got.every(([t, c]) => c <= min || want[t] === c);
    }""", arg=[field, want])


def test_quoting_round_trips_through_the_parser(facets_page: Page) -> None:
    page = facets_page
    values = ODD + ["plain", "tab\there", "trail\\", 'q"', "12:30", "*", "-", "has"]
    got = page.evaluate("""async (values) => {
      const q = await import(new URL("query.js", location.href).href);
      return values.map((v) => {
        const out = [];
        for (const field of ["user", "request-id", "odd key", "has", "a\\"b"]) {
          const text = q.formatTerm(field, v), r = q.parseQuery(text);
          const t = r.ok && r.terms.length === 1 ? r.terms[0] : null;
          out.push([text, t && t.kind === "field" && t.field === field && t.value === v && !t.prefix && !t.negate]);
          const neg = q.parseQuery(q.formatTerm(field, v, true));
          out.push([text, neg.ok && neg.terms.length === 1 && neg.terms[0].negate]);
        }
        return out;
      }).flat();
    }""", values)
    bad = [text for text, ok in got if not ok]
    assert not bad, bad
    # plain values stay plain
    assert page.evaluate("""async () => {
      const q = await import(new URL("query.js", location.href).href);
      return [q.formatTerm("user", "ann"), q.formatTerm("status", "200"), q.formatTerm("user", "Ann Lee"),
              q.formatTerm("request-id", "r-1"), q.formatTerm("logger", "shop.*")];
    }""") == ["user:ann", "status:200", 'user:"Ann Lee"', '"request-id":r-1', 'logger:"shop.*"']


def test_facets_list_the_values_of_the_rows_shown(facets_page: Page, screenshot) -> None:
    page = facets_page
    panel = page.get_by_test_id("facets")
    expect(panel).to_be_hidden()
    page.get_by_test_id("facets-toggle").click()
    expect(panel).to_be_visible()
    expect(page.get_by_test_id("facets-toggle")).to_have_attribute("aria-pressed", "true")
    all_ex = [r[3] or {} for r in RECORDS]
    expect_facet(page, "level", [LEVEL_NAMES[r[1]] for r in RECORDS])
    expect_facet(page, "logger", [r[0] for r in RECORDS])
    expect_facet(page, "app", ["facetdemo"] * TOTAL)
    expect_facet(page, "user", [ex["user"] for ex in all_ex if "user" in ex])
    expect_facet(page, "status", [ex["status"] for ex in all_ex if "status" in ex])
    expect_facet(page, "cached", [ex["cached"] for ex in all_ex if "cached" in ex])
    expect_facet(page, "request-id", [ex["request-id"] for ex in all_ex if "request-id" in ex])
    expect_facet(page, "note", [None for ex in all_ex if "note" in ex])
    expect_facet(page, "n", [ex["n"] for ex in all_ex if "n" in ex])
    expect(facet(page, "n").get_by_test_id("facet-rest")).to_have_text("+ 32 in 32 more values")
    # an object is no value to click: counted apart
    expect(facet(page, "obj").get_by_test_id("facet-rest")).to_contain_text("objects")
    # the head says how many rows carry the key and how many values it has
    expect(facet(page, "user").locator(".facet-meta")).to_have_text(
        f"{sum('user' in ex for ex in all_ex)} \u00b7 {len(set(ex['user'] for ex in all_ex if 'user' in ex))} values")
    screenshot(page, "facets")
    # the facets follow the query
    page.get_by_test_id("search").fill("level>=warning")
    shown = [r for r in RECORDS if r[1] >= W]
    expect_rows(page, [r[2] for r in shown])
    expect_facet(page, "level", [LEVEL_NAMES[r[1]] for r in shown])
    expect_facet(page, "user", [r[3]["user"] for r in shown if r[3] and "user" in r[3]])
    expect(page.get_by_test_id("facets-info")).to_contain_text(f"{len(shown)} rows")
    # and the other filters
    page.get_by_test_id("level-ERROR").click()
    shown = [r for r in RECORDS if r[1] == W]
    expect_rows(page, [r[2] for r in shown])
    expect_facet(page, "logger", [r[0] for r in shown])
    page.get_by_test_id("facets-toggle").click()
    expect(panel).to_be_hidden()


def click_value(page: Page, field: str, text: str, **kwargs: Any) -> None:
    items = facet(page, field).get_by_test_id("facet-value")
    item = items.filter(has=page.get_by_text(text, exact=True))
    expect(item).to_have_count(1)
    item.locator(".facet-text").click(**kwargs)


@pytest.mark.parametrize("field, value, term", [
    ("user", "Ann Lee", 'user:"Ann Lee"'),
    ("user", 'say "hi"', r'user:"say \"hi\""'),
    ("user", "a:b", 'user:"a:b"'),
    ("user", "x*", 'user:"x*"'),
    ("user", "back\\slash", r'user:"back\\slash"'),
    ("user", "-dash", "user:-dash"),
    ("status", 500, "status:500"),
    ("cached", False, "cached:false"),
    ("request-id", "r-1", '"request-id":r-1'),
    ("note", None, "note:null"),
])
def test_a_click_on_a_facet_value_filters_to_it(facets_page: Page, field: str, value: Any, term: str) -> None:
    page = facets_page
    page.get_by_test_id("facets-toggle").click()
    text = expected([value])
    [label] = text
    click_value(page, field, label)
    search = page.get_by_test_id("search")
    expect(search).to_have_value(term)

    def same(x: Any) -> bool:
        if isinstance(value, str) and isinstance(x, str):
            return x.lower() == value.lower()
        return x is value if value is None or isinstance(value, bool) else (x == value and not isinstance(x, bool))

    matching = where(lambda lg, lv, ex: field in ex and same(ex[field]))
    expect_rows(page, matching)
    expect_facet(page, field, [(r[3] or {})[field] for r in RECORDS if r[2] in matching])
    # Alt-click: the opposite, in place
    click_value(page, field, label, modifiers=["Alt"])
    expect(search).to_have_value("-" + term)
    expect_rows(page, [m for m in where(lambda lg, lv, ex: True) if m not in matching])


def test_clicks_build_up_the_query(facets_page: Page) -> None:
    page = facets_page
    search = page.get_by_test_id("search")
    search.fill("event")
    page.get_by_test_id("facets-toggle").click()
    click_value(page, "logger", "shop.db")
    expect(search).to_have_value("event logger:shop.db")
    expect_rows(page, where(lambda lg, lv, ex: lg == "shop.db"))
    click_value(page, "logger", "shop.db")  # the same again: kept once
    expect(search).to_have_value("event logger:shop.db")
    # the "−" button excludes
    item = facet(page, "status").get_by_test_id("facet-value").filter(has=page.get_by_text("200", exact=True))
    item.hover()
    item.get_by_test_id("exclude").click()
    expect(search).to_have_value("event logger:shop.db -status:200")
    expect_rows(page, where(lambda lg, lv, ex: lg == "shop.db" and ex.get("status") != 200))
    click_value(page, "level", "WARNING")
    expect(search).to_have_value("event logger:shop.db -status:200 level:warning")
    expect_rows(page, where(lambda lg, lv, ex: lg == "shop.db" and ex.get("status") != 200 and lv == W))
    # a logger whose name needs quotes, and the app
    search.fill("")
    click_value(page, "logger", "odd logger*")
    expect(search).to_have_value('logger:"odd logger*"')
    expect_rows(page, where(lambda lg, lv, ex: lg == "odd logger*"))
    click_value(page, "app", "facetdemo")
    expect(search).to_have_value('logger:"odd logger*" app:facetdemo')
    expect_rows(page, where(lambda lg, lv, ex: lg == "odd logger*"))
    # a query that does not parse: the term goes on the last good one
    search.fill('logger:"odd logger*" "open')
    expect(page.get_by_test_id("query-error")).to_be_visible()
    click_value(page, "level", "ERROR")
    expect(search).to_have_value('logger:"odd logger*" app:facetdemo level:error')
    expect_rows(page, where(lambda lg, lv, ex: lg == "odd logger*" and lv == E))


def test_values_in_the_detail_pane_and_the_table(facets_page: Page) -> None:
    page = facets_page
    search = page.get_by_test_id("search")
    k = 5  # event 5: shop.api, ERROR... as RECORDS says
    lg, lv, msg, ex = RECORDS[k]
    page.evaluate("window.rerunLogging.scrollToRow(0)")
    row = page.get_by_test_id("rows").locator(f"[data-row='{k}']")
    row.click()
    detail = page.get_by_test_id("detail")
    expect(detail.get_by_test_id("detail-message")).to_have_text(msg)
    detail.locator("[data-field=logger] .filterable").click()
    expect(search).to_have_value(f"logger:{lg}")
    expect_rows(page, where(lambda g, v, e: g == lg))
    # an extra's value; Alt-click excludes
    users = detail.get_by_test_id("detail-extras").locator("pre.filterable")
    expect(users.first).to_be_visible()
    assert ex["user"] == "Ann Lee"
    detail.get_by_test_id("detail-extras").locator("dd", has_text='"Ann Lee"').locator("pre").click(
        modifiers=["Alt"])
    expect(search).to_have_value(f'logger:{lg} -user:"Ann Lee"')
    expect_rows(page, where(lambda g, v, e: g == lg and str(e.get("user", "")).lower() != ex["user"].lower()))
    # the key itself: has:
    search.fill("")
    expect_rows(page, [r[2] for r in RECORDS])
    page.evaluate("window.rerunLogging.scrollToRow(0)")
    row = page.get_by_test_id("rows").locator("[data-row='0']")
    row.click()
    detail.get_by_test_id("detail-extras").locator("dt", has_text="request-id").click()
    expect(search).to_have_value("has:request-id")
    expect_rows(page, where(lambda g, v, e: "request-id" in e))
    # the level field, and its "−"
    dd = detail.locator("[data-field=level]")
    expect(dd).to_have_text("INFO (20)")  # the value's text is unchanged
    dd.hover()
    dd.get_by_test_id("exclude").click()
    expect(search).to_have_value("has:request-id -level:info")
    expect_rows(page, where(lambda g, v, e: "request-id" in e and v != I))
    # the table: Shift-click a cell filters to its value, Shift+Alt-click leaves it out
    search.fill("")
    expect_rows(page, [r[2] for r in RECORDS])
    page.evaluate("window.rerunLogging.scrollToRow(0)")
    cell = page.get_by_test_id("rows").locator("[data-row='2'] .c-logger")
    cell.click(modifiers=["Shift"])
    expect(search).to_have_value(f"logger:{RECORDS[2][0]}")
    expect_rows(page, where(lambda g, v, e: g == RECORDS[2][0]))
    page.get_by_test_id("rows").locator("[data-row='2'] .c-level").click(modifiers=["Shift", "Alt"])
    expect(search).to_have_value(f"logger:{RECORDS[2][0]} -level:warning")
    expect_rows(page, where(lambda g, v, e: g == RECORDS[2][0] and v != W))
    # the message cell: its template
    search.fill("")
    expect_rows(page, [r[2] for r in RECORDS])
    page.evaluate("window.rerunLogging.scrollToRow(0)")
    page.get_by_test_id("rows").locator("[data-row='3'] .c-msg").click(modifiers=["Shift"])
    expect(search).to_have_value('template:%s')
    expect_rows(page, [r[2] for r in RECORDS])  # every record was logged as "%s"


def test_facets_follow_records_arriving(facets_page: Page) -> None:
    page = facets_page
    page.get_by_test_id("facets-toggle").click()
    expect_facet(page, "user", [(r[3] or {})["user"] for r in RECORDS if r[3] and "user" in r[3]])
    page.evaluate("""() => window.rerunLogging.inject({type: "records", recording: "late-rec", pid: 77, reset: true,
      strings: ["INFO", "late", "/late", "/x.py"], seq: [0, 1, 2], time: [Date.now(), Date.now(), Date.now()],
      ns: [0, 0, 0], level: [20, 20, 20], level_name: [0, 0, 0], logger: [1, 1, 1], entity: [2, 2, 2],
      message: ["l0", "l1", "l2"], template: [null, null, null],
      extras: [{user: "zed"}, {user: "zed"}, {user: "zed", status: 200}], thread: [1, 1, 1], thread_name: [null, null, null],
      process: [77, 77, 77], process_name: [null, null, null], task: [null, null, null], path: [3, 3, 3],
      line: [1, 1, 1], function: [null, null, null], exception: [], stack: [], trace: []})""")
    page.wait_for_function(f"window.rerunLogging.total() === {TOTAL + 3}")
    users = [(r[3] or {})["user"] for r in RECORDS if r[3] and "user" in r[3]] + ["zed"] * 3
    expect_facet(page, "user", users)
    expect_facet(page, "logger", [r[0] for r in RECORDS] + ["late"] * 3)
    apps = facet_counts(page, "app")
    assert apps == {"facetdemo": TOTAL, "late-rec": 3}

"""The search box's query language (static/query.js, static/predicates.js), in a real browser.

(a) The parser alone: the page's own module imported with ``page.evaluate``, every
form, quoting, escapes and errors with their positions. (b) A real viewer holding a
recording of varied records: each form typed into the search box, the rows and the
counts shown checked against what the records say; a wrong query shows its error and
keeps the rows; the ``?`` help opens. Every wait is on the page's state, never a sleep.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402

from .test_browser_ui import (  # noqa: E402,F401  (the module's Playwright fixtures)
    browser, browser_context_args, browser_type, launch_browser, make_recording, open_page,
    playwright, viewers, wait_shown,
)

D, I, W, E, C = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL

RECORDS: list[tuple[str, int, str, dict[str, Any] | None]] = [
    ("shop.db", I, "query 0", {"latency_ms": 5, "status": 200, "cached": True, "user": "ann"}),
    ("shop.db", I, "query 1", {"latency_ms": 120, "status": 200, "cached": False, "user": "bob"}),
    ("shop.db", W, "slow query 2", {"latency_ms": 950, "status": 200, "cached": False}),
    ("shop.api", I, "GET /cart", {"status": 200, "latency_ms": 30, "user": "ann"}),
    ("shop.api", E, "GET /pay failed", {"status": 503, "latency_ms": 101, "user": "Cy"}),
    ("shop.api", W, "GET /pay retry", {"status": 500, "latency_ms": 100}),
    ("shop.api", D, "GET /health", {"status": "ok"}),
    ("auth", I, "login ok", {"user": "ann"}),
    ("auth", E, "login failed: bad password", {"user": "bob", "attempt": 3}),
    ("auth", D, "token refreshed", None),
    ("shopping", I, "cart shopping list", None),
    ("shop", C, "shop down", {"cached": True}),
]
ALL = [r[2] for r in RECORDS]

RECORDING = f"""
import logging, sys, rerun_logging
h = rerun_logging.RerunHandler(sink="save:" + sys.argv[1], application_id="querydemo")
for name, level, message, extras in {RECORDS!r}:
    log = logging.getLogger(name); log.addHandler(h); log.setLevel(logging.DEBUG); log.propagate = False
    log.log(level, "%s", message, extra=extras)
h.close()
"""

SHOWN = "window.rerunLogging.shownRows(0, 1000).map((i) => window.rerunLogging.message(i))"


def where(pred) -> list[str]:
    """The messages of the records for which ``pred(logger, level, extras)`` holds."""
    return [m for lg, lv, m, ex in RECORDS if pred(lg, lv, ex or {})]


def num(ex: dict[str, Any], key: str) -> float | None:
    v = ex.get(key)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def in_shop(lg: str) -> bool:
    return lg == "shop" or lg.startswith("shop.")


# query -> the messages it shows (in order), computed from RECORDS
QUERIES: list[tuple[str, list[str]]] = [
    ("query", ["query 0", "query 1", "slow query 2"]),
    ("QUERY 1", ["query 1"]),  # bare words next to each other: one phrase, as before
    ("GET /pay", ["GET /pay failed", "GET /pay retry"]),
    ('"pay" "get"', ["GET /pay failed", "GET /pay retry"]),  # each anywhere
    ("pay get", []),
    ('"failed: bad"', ["login failed: bad password"]),
    (r"failed\: bad", ["login failed: bad password"]),
    ("logger:shop.api", where(lambda lg, lv, ex: lg == "shop.api")),
    ("logger:SHOP.API", where(lambda lg, lv, ex: lg == "shop.api")),
    ("logger:shop.*", where(lambda lg, lv, ex: in_shop(lg))),
    ("logger:shop*", where(lambda lg, lv, ex: lg.startswith("shop"))),
    ("logger:shop", ["shop down"]),
    ("level:error", where(lambda lg, lv, ex: lv == E)),
    ("level:40", where(lambda lg, lv, ex: lv == E)),
    ("level>=warning", where(lambda lg, lv, ex: lv >= W)),
    ("level<info", where(lambda lg, lv, ex: lv < I)),
    ("latency_ms>100", where(lambda lg, lv, ex: (num(ex, "latency_ms") or 0) > 100)),
    ("latency_ms>=100", where(lambda lg, lv, ex: (num(ex, "latency_ms") or 0) >= 100)),
    ("latency_ms<=30", where(lambda lg, lv, ex: num(ex, "latency_ms") is not None and ex["latency_ms"] <= 30)),
    ("status>=500", where(lambda lg, lv, ex: (num(ex, "status") or 0) >= 500)),
    ("status:200", where(lambda lg, lv, ex: ex.get("status") == 200)),
    ("status:ok", ["GET /health"]),
    ("user:ann", where(lambda lg, lv, ex: ex.get("user") == "ann")),
    ("user:ANN", where(lambda lg, lv, ex: ex.get("user") == "ann")),
    ("user:c*", ["GET /pay failed"]),
    ("cached:true", where(lambda lg, lv, ex: ex.get("cached") is True)),
    ("cached:false", where(lambda lg, lv, ex: ex.get("cached") is False)),
    ("attempt:3", ["login failed: bad password"]),
    ("-logger:shop.*", where(lambda lg, lv, ex: not in_shop(lg))),
    ("-query", [m for m in ALL if "query" not in m]),
    ("login -failed", ["login ok"]),
    ("has:user", where(lambda lg, lv, ex: "user" in ex)),
    ("-has:latency_ms", where(lambda lg, lv, ex: "latency_ms" not in ex)),
    ("logger:shop.* level>=warning -has:user",
     where(lambda lg, lv, ex: in_shop(lg) and lv >= W and "user" not in ex)),
    ("-level:debug -level:info has:status", where(lambda lg, lv, ex: lv > I and "status" in ex)),
    ("app:querydemo", ALL),
    ("app:other", []),
    ("pid>0", ALL),
    ("thread:MainThread", ALL),
    ("-thread:MainThread", []),
    ("nosuchfield:1", []),
    ("has:nosuchfield", []),
]


@pytest.fixture(scope="module")
def query_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_recording(RECORDING, tmp_path_factory.mktemp("query") / "query.rlg")


@pytest.fixture
def query_page(page: Page, viewers, query_file: Path) -> Page:
    _, url = viewers(str(query_file))
    open_page(page, url, len(RECORDS))
    wait_shown(page, len(RECORDS))
    return page


# ---------------------------------------------------------------------------- (a) the parser

PARSE = """async (texts) => {
  const { parseQuery } = await import(new URL("query.js", location.href).href);
  return texts.map((t) => parseQuery(t));
}"""


def parse(page: Page, *texts: str) -> list[dict[str, Any]]:
    return page.evaluate(PARSE, list(texts))


def terms(page: Page, text: str) -> list[dict[str, Any]]:
    [result] = parse(page, text)
    assert result["ok"], result
    return result["terms"]


def error(page: Page, text: str) -> dict[str, Any]:
    [result] = parse(page, text)
    assert not result["ok"], result
    return result["error"]


def brief(t: dict[str, Any]) -> tuple[Any, ...]:
    keys = {"text": ("value",), "field": ("field", "value", "prefix"), "compare": ("field", "op", "value"),
            "has": ("field",)}[t["kind"]]
    return (t["kind"], t["negate"], *(t[k] for k in keys))


def test_parser_every_form(query_page: Page) -> None:
    page = query_page
    assert terms(page, "") == [] and terms(page, "   ") == []
    got = terms(page, 'timeout "slow  request" logger:shop.* level>=warning latency_ms>100 '
                      'status<=499 x<2.5e3 -debug -logger:auth -"a b" has:user -has:trace_id')
    assert [brief(t) for t in got] == [
        ("text", False, "timeout"),
        ("text", False, "slow  request"),
        ("field", False, "logger", "shop.", True),
        ("compare", False, "level", ">=", 30),
        ("compare", False, "latency_ms", ">", 100),
        ("compare", False, "status", "<=", 499),
        ("compare", False, "x", "<", 2500),
        ("text", True, "debug"),
        ("field", True, "logger", "auth", False),
        ("text", True, "a b"),
        ("has", False, "user"),
        ("has", True, "trace_id"),
    ]
    # positions: each term's span in the text
    spans = [(t["start"], t["end"]) for t in terms(page, "a  -b:c  d>1")]
    assert spans == [(0, 1), (3, 7), (9, 12)]
    # level names (any case, with aliases) and numbers; the other comparisons
    for text, value in [("level>WARN", 30), ("level<=Critical", 50), ("level>=fatal", 50), ("level>15", 15)]:
        assert brief(terms(page, text)[0])[-1] == value, text
    assert [brief(t)[3] for t in terms(page, "a>1 a>=1 a<1 a<=1")] == [">", ">=", "<", "<="]
    assert brief(terms(page, "pid:42")[0]) == ("field", False, "pid", "42", False)
    assert brief(terms(page, "level:warning")[0]) == ("field", False, "level", "warning", False)


def test_parser_words_join_into_phrases(query_page: Page) -> None:
    page = query_page
    assert [brief(t) for t in terms(page, "query  1 took")] == [("text", False, "query  1 took")]
    assert [brief(t) for t in terms(page, "a b -c d e")] == [
        ("text", False, "a b"), ("text", True, "c"), ("text", False, "d e")]
    assert [brief(t) for t in terms(page, 'a "b" c')] == [
        ("text", False, "a"), ("text", False, "b"), ("text", False, "c")]
    assert [brief(t) for t in terms(page, "a level:info b")] == [
        ("text", False, "a"), ("field", False, "level", "info", False), ("text", False, "b")]
    # what is not a field or an exclusion stays text
    assert [brief(t) for t in terms(page, "12:30 - status=500 a-b")] == [("text", False, "12:30 - status=500 a-b")]


def test_parser_quoting_and_escapes(query_page: Page) -> None:
    page = query_page
    assert brief(terms(page, r'"say \"hi\" \\ now"')[0]) == ("text", False, 'say "hi" \\ now')
    assert brief(terms(page, r"a\:b")[0]) == ("text", False, "a:b")
    assert brief(terms(page, r"\-x")[0]) == ("text", False, "-x")
    assert brief(terms(page, r'a\"b')[0]) == ("text", False, 'a"b')
    assert brief(terms(page, 'user:"Ann Lee"')[0]) == ("field", False, "user", "Ann Lee", False)
    assert brief(terms(page, 'logger:"shop.*"')[0]) == ("field", False, "logger", "shop.*", False)  # quoted: no prefix
    assert brief(terms(page, r"logger:shop\*")[0]) == ("field", False, "logger", "shop*", False)
    assert brief(terms(page, 'has:"odd key"')[0]) == ("has", False, "odd key")
    assert brief(terms(page, "-")[0]) == ("text", False, "-")


@pytest.mark.parametrize("text, pos, message", [
    ('a "open', 2, "unclosed quote"),
    ('""', 0, "empty phrase"),
    ("level:", 6, 'expected a value after "level:"'),
    ("x logger: y", 9, 'expected a value after "logger:"'),
    ("has:", 4, 'expected a value after "has:"'),
    ('has:""', 4, "expected a field name"),
    ("latency_ms>", 11, 'expected a value after "latency_ms>"'),
    ("latency_ms>fast", 11, 'expected a number after "latency_ms>"'),
    ("level>=bogus", 7, "expected a level"),
    ("logger>3", 6, "logger cannot be compared"),
    ("-app<=2", 4, "app cannot be compared"),
    ("pid:abc", 4, "pid: expects a number"),
    ('a:"b c"x', 7, "expected a space after"),
])
def test_parser_errors_with_positions(query_page: Page, text: str, pos: int, message: str) -> None:
    err = error(query_page, text)
    assert err["pos"] == pos, err
    assert message in err["message"], err


# ---------------------------------------------------------------------------- (b) the page


def type_query(page: Page, text: str) -> None:
    search = page.get_by_test_id("search")
    search.fill("")
    search.press_sequentially(text) if len(text) < 12 else search.fill(text)


def expect_rows(page: Page, messages: list[str], total: int = len(RECORDS)) -> None:
    """The page shows exactly ``messages`` (of ``total`` records), and no query error."""
    page.wait_for_function(f"(want) => JSON.stringify({SHOWN}) === JSON.stringify(want)", arg=messages)
    expect(page.get_by_test_id("counts")).to_have_text(f"{len(messages)} / {total}")
    expect(page.get_by_test_id("query-error")).to_be_hidden()


def test_each_query_form_in_the_search_box(query_page: Page) -> None:
    page = query_page
    for text, messages in QUERIES:
        type_query(page, text)
        try:
            expect_rows(page, messages)
        except AssertionError as e:
            raise AssertionError(f"{text!r}: {page.evaluate(SHOWN)}") from e
    page.get_by_test_id("search").fill("")
    expect_rows(page, ALL)
    # the rows drawn are those: a query's rows on screen, its text highlighted
    page.get_by_test_id("search").fill("pay level>=warning")
    rows = page.get_by_test_id("row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("GET /pay failed")
    expect(rows.first.locator("mark")).to_have_text("pay")


def test_query_with_the_other_controls(query_page: Page) -> None:
    page = query_page
    page.get_by_test_id("search").fill("logger:auth")
    expect_rows(page, ["login ok", "login failed: bad password", "token refreshed"])
    page.get_by_test_id("level-ERROR").click()  # the level toggles still apply
    expect_rows(page, ["login ok", "token refreshed"])
    page.get_by_test_id("level-ERROR").click()
    page.get_by_test_id("min-level").select_option("20")
    expect_rows(page, ["login ok", "login failed: bad password"])
    page.get_by_test_id("min-level").select_option("0")
    page.get_by_test_id("search").fill("-has:user")
    page.get_by_test_id("tree").locator("[data-path='/shop']").click()  # the logger tree too
    expect_rows(page, ["slow query 2", "GET /pay retry", "GET /health", "shop down"])
    page.get_by_test_id("tree").locator("[data-path='/shop']").click()
    expect_rows(page, where(lambda lg, lv, ex: "user" not in ex))


def test_a_wrong_query_shows_its_error_and_keeps_the_rows(query_page: Page) -> None:
    page = query_page
    search = page.get_by_test_id("search")
    search.fill("logger:shop.api")
    shown = where(lambda lg, lv, ex: lg == "shop.api")
    expect_rows(page, shown)
    err = page.get_by_test_id("query-error")
    for text, message in [("logger:shop.api level>=bogus", "expected a level"),
                          ('logger:shop.api "unclosed', "unclosed quote"),
                          ("latency_ms>", "expected a value")]:
        search.fill(text)
        expect(err).to_be_visible()
        expect(err).to_contain_text(message)
        expect(search).to_have_attribute("aria-invalid", "true")
        assert page.evaluate(SHOWN) == shown  # the last good query's rows stay
        expect(page.get_by_test_id("counts")).to_have_text(f"{len(shown)} / {len(RECORDS)}")
    search.fill("logger:shop.api level>=bogus")
    expect(err).to_have_attribute("data-pos", "23")
    expect(err.locator("code.at")).to_have_text("b")
    # typing on to a good query: the error goes, the new rows come
    search.fill("logger:shop.api level>=warning")
    expect_rows(page, ["GET /pay failed", "GET /pay retry"])
    expect(search).to_have_attribute("aria-invalid", "false")
    # typed key by key: each prefix that does not parse keeps the rows of the last that did
    search.fill("")
    expect_rows(page, ALL)
    search.press_sequentially('"slow q')
    expect(err).to_contain_text("unclosed quote")
    assert page.evaluate(SHOWN) == ALL
    search.press("End")
    search.press_sequentially('"')
    expect_rows(page, ["slow query 2"])


def test_the_help_opens(query_page: Page, screenshot) -> None:
    page = query_page
    helpbox = page.get_by_test_id("query-help")
    expect(helpbox).to_be_hidden()
    page.get_by_test_id("query-help-button").click()
    expect(helpbox).to_be_visible()
    for form in ["logger:shop.*", "level>=warning", "latency_ms>100", "-logger:auth", "has:user", '"slow request"']:
        expect(helpbox).to_contain_text(form)
    page.get_by_test_id("search").fill("level>=bogus")
    screenshot(page, "help")
    page.keyboard.press("Escape")
    expect(helpbox).to_be_hidden()


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
LATE = """(args) => window.rerunLogging.inject({type: "records", recording: "late-rec", pid: 77, reset: true,
    strings: ["WARNING", "shop.late", "/shop/late", "/srv/app/late.py", "checkout-task", "Worker-9"],
    seq: [0, 1], time: [Date.now(), Date.now()], ns: [0, 0], level: [30, 30], level_name: [0, 0],
    logger: [1, 1], entity: [2, 2], message: ["late one", "late two"], template: [null, null],
    extras: [{latency_ms: 700}, null], thread: [9, 9], thread_name: [5, 5], process: [77, 77],
    process_name: [null, null], task: [4, null], path: [3, 3], line: [1, 1], function: [null, null],
    exception: [], stack: [], trace: [[0, args.trace, "00f067aa0ba902b7", 1]]})"""


def test_queries_on_records_arriving_later(query_page: Page) -> None:
    """A query stays applied to records arriving after it (new loggers, files, tasks,
    trace ids interned since), and the built-in fields match them."""
    page = query_page
    search = page.get_by_test_id("search")
    shop = where(lambda lg, lv, ex: in_shop(lg))
    search.fill("logger:shop.*")
    expect_rows(page, shop)
    page.evaluate(LATE, {"trace": TRACE})
    page.wait_for_function(f"window.rerunLogging.total() === {len(RECORDS) + 2}")
    total = len(RECORDS) + 2

    def rows(text: str, messages: list[str]) -> None:
        search.fill(text)
        page.wait_for_function(f"(want) => JSON.stringify({SHOWN}) === JSON.stringify(want)", arg=messages)
        expect(page.get_by_test_id("counts")).to_have_text(f"{len(messages)} / {total}")

    rows("logger:shop.*", shop + ["late one", "late two"])
    search.fill("")
    rows("logger:shop.* latency_ms>500", ["slow query 2", "late one"])
    rows(f"trace_id:{TRACE}", ["late one"])
    rows(f"trace_id:{TRACE[:8]}*", ["late one"])
    rows(f"-trace_id:{TRACE} logger:shop.late", ["late two"])
    rows("has:trace_id", ["late one"])
    rows("has:task", ["late one"])
    rows("task:checkout-task", ["late one"])
    rows("file:late.py", ["late one", "late two"])
    rows("file:/srv/app/late.py", ["late one", "late two"])
    rows("pid:77", ["late one", "late two"])
    rows("thread:9", ["late one", "late two"])
    rows("thread:worker-9", ["late one", "late two"])
    rows("app:late-rec", ["late one", "late two"])
    rows("-app:late-rec", ALL)

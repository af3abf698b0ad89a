"""Views you can share (static/urlstate.js) and the keys (static/keyboard.js), in a real browser.

The page's URL fragment carries the query, the selected recording, the time range and
the selected row (by its stream and sequence number): reloading, back / forward and a
link opened in a fresh tab restore the view once the records have arrived. Typing in
the search box is one history entry; the selection replaces the current one. The keys
are listed in the detail pane and the ``?`` help. Every wait is on the page's state,
never a sleep.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Page, expect  # noqa: E402

from .test_browser_ui import (  # noqa: E402,F401  (the module's Playwright fixtures)
    browser, browser_context_args, browser_type, launch_browser, open_page, playwright, viewers,
    wait_shown,
)
from .test_page_context import N, level, row_of, two_files  # noqa: E402,F401

SHOWN = "window.rerunLogging.shownRows(0, 100000).map((i) => window.rerunLogging.message(i))"


def fragment(page: Page) -> str:
    return page.evaluate("location.hash")


def wait_fragment(page: Page, pattern: str) -> None:
    page.wait_for_function("(p) => new RegExp(p).test(location.hash)", arg=pattern)


def count(app: str | None, keep) -> int:
    return sum(1 for i in range(N) for a in ("alpha", "beta") if (app is None or a == app) and keep(i))


def seq_of(page: Page, message: str) -> int:
    """The seq of the record shown with `message` (from the detail pane)."""
    page.evaluate(f"window.rerunLogging.select({row_of(page, message)})")
    expect(page.get_by_test_id("detail-message")).to_have_text(message)
    return int(page.locator("[data-field=seq]").text_content())


@pytest.fixture
def served(viewers, two_files: tuple[Path, Path]) -> str:
    _, url = viewers(*map(str, two_files))
    return url


def test_the_url_carries_the_view_and_restores_it(page: Page, served: str) -> None:
    open_page(page, served, 2 * N)
    wait_shown(page, 2 * N)
    assert fragment(page) == ""
    start = page.evaluate("history.length")
    # the query (typed)
    page.get_by_test_id("search").fill("-level:debug")
    not_debug = lambda i: level(i) != "DEBUG"  # noqa: E731
    wait_shown(page, count(None, not_debug))
    wait_fragment(page, r"^#q=-level:debug$")
    page.get_by_test_id("rows").focus()
    # the recording
    page.get_by_test_id("recording").filter(has_text="alpha").click()
    wait_shown(page, count("alpha", not_debug))
    wait_fragment(page, r"&rec=\d+:rec-alpha$")
    pid = re.search(r"rec=(\d+):", fragment(page)).group(1)
    # the time range
    t0, t1 = page.evaluate(f"[window.rerunLogging.timeOf({row_of(page, 'alpha 20')}), "
                           f"window.rerunLogging.timeOf({row_of(page, 'alpha 150')})]")
    page.evaluate(f"window.rerunLogging.setFilter({{timeRange: [{t0!r}, {t1!r}]}})")
    in_range = lambda i: not_debug(i) and 20 <= i <= 150  # noqa: E731
    wait_shown(page, count("alpha", in_range))
    wait_fragment(page, r"&t=[0-9.]+,[0-9.]+$")
    # the row: by its stream and seq
    seq = seq_of(page, "alpha 100")
    wait_fragment(page, rf"&row={seq}:{pid}:rec-alpha$")
    url = page.url
    assert page.evaluate("history.length") == start + 3  # query, recording, time range; the row replaced
    assert f"#q=-level:debug&rec={pid}:rec-alpha&t=" in url

    # reload: the same view once the records are back
    page.reload()
    page.wait_for_function(f"window.rerunLogging && window.rerunLogging.total() === {2 * N}")
    wait_shown(page, count("alpha", in_range))
    expect(page.get_by_test_id("search")).to_have_value("-level:debug")
    expect(page.get_by_test_id("recording").filter(has_text="alpha")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_test_id("timeline-clear")).to_be_visible()
    expect(page.get_by_test_id("detail-message")).to_have_text("alpha 100")
    expect(page.locator("[data-testid=row].sel")).to_be_in_viewport()
    assert page.url == url

    # back: the view before the time range (the row was selected in that entry)
    page.go_back()
    wait_shown(page, count("alpha", not_debug))
    expect(page.get_by_test_id("timeline-clear")).to_be_hidden()
    page.wait_for_function("window.rerunLogging.selected() === -1")
    assert fragment(page) == f"#q=-level:debug&rec={pid}:rec-alpha"
    # back: all recordings; back: no query
    page.go_back()
    wait_shown(page, count(None, not_debug))
    expect(page.get_by_test_id("recording-all")).to_have_attribute("aria-selected", "true")
    page.go_back()
    wait_shown(page, 2 * N)
    expect(page.get_by_test_id("search")).to_have_value("")
    assert fragment(page) == ""
    # forward again, to the end: the row is selected again
    page.go_forward()
    wait_shown(page, count(None, not_debug))
    page.go_forward()
    page.go_forward()
    wait_shown(page, count("alpha", in_range))
    expect(page.get_by_test_id("detail-message")).to_have_text("alpha 100")


def test_a_link_opens_the_same_view_in_a_fresh_tab(browser: Browser, page: Page, served: str) -> None:
    open_page(page, served, 2 * N)
    seq = seq_of(page, "beta 133")
    pid = page.locator("[data-field=recording]").text_content().split("pid ")[1].rstrip(")")
    link = served.split("#")[0] + "#" + "&".join([
        "q=" + quote("beta", safe=""), f"rec={pid}:rec-beta", f"row={seq}:{pid}:rec-beta"])
    context = browser.new_context(bypass_csp=True)
    try:
        other = context.new_page()
        open_page(other, link, 2 * N)
        wait_shown(other, N)
        expect(other.get_by_test_id("search")).to_have_value("beta")
        expect(other.get_by_test_id("detail-message")).to_have_text("beta 133")
        expect(other.locator("[data-testid=row].sel")).to_be_in_viewport()
        expect(other.get_by_test_id("follow")).to_have_attribute("aria-pressed", "false")
        assert other.evaluate("location.hash") == "#" + link.split("#")[1]
        # a row that does not exist selects nothing and the rest still applies
        other.goto(served.split("#")[0] + f"#q=alpha&row=99999:{pid}:rec-alpha")
        other.wait_for_function(f"window.rerunLogging && window.rerunLogging.total() === {2 * N}")
        wait_shown(other, N)
        assert other.evaluate("window.rerunLogging.selected()") == -1
    finally:
        context.close()


def test_typing_is_one_history_entry_and_the_selection_replaces(page: Page, served: str) -> None:
    open_page(page, served, 2 * N)
    wait_shown(page, 2 * N)
    start = page.evaluate("history.length")
    box = page.get_by_test_id("search")
    box.click()
    page.keyboard.type("alpha 1", delay=20)
    wait_fragment(page, r"^#q=alpha%201$")
    wait_shown(page, len([i for i in range(N) if str(i).startswith("1")]))
    assert page.evaluate("history.length") == start + 1
    # the selection moves (j / k, arrows): the entry is replaced, not added
    page.get_by_test_id("rows").focus()
    page.get_by_test_id("row").first.click()
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("ArrowDown")
    wait_fragment(page, r"&row=\d+:\d+:rec-alpha$")
    assert page.evaluate("history.length") == start + 1
    # a second typing session is a second entry
    box.click()
    page.keyboard.press("End")
    page.keyboard.type("0", delay=20)
    wait_fragment(page, r"^#q=alpha%2010&")
    assert page.evaluate("history.length") == start + 2
    page.go_back()
    expect(box).to_have_value("alpha 1")
    page.go_back()
    expect(box).to_have_value("")
    wait_shown(page, 2 * N)


def test_keys_are_listed_and_bound(page: Page, served: str) -> None:
    open_page(page, served, 2 * N)
    shortcuts = page.locator(".detail .shortcuts")
    for key in ("/", "Esc", "k j", "c", "p", "e / E", "f", "?"):
        expect(shortcuts.locator("dt", has_text=key).first).to_be_visible()
    page.get_by_test_id("rows").focus()
    page.keyboard.press("?")
    help_keys = page.get_by_test_id("key-help")
    expect(help_keys).to_be_visible()
    expect(help_keys).to_contain_text("context")
    page.keyboard.press("Escape")
    expect(help_keys).to_be_hidden()
    # p clicks the patterns panel's toggle (patterns.js), when the page has one
    page.evaluate("""() => {
        window.__patternClicks = 0;
        let t = document.querySelector('[data-testid="patterns-toggle"]');
        if (!t) { t = document.createElement("button"); t.setAttribute("data-testid", "patterns-toggle");
                  t.hidden = true; document.body.appendChild(t); }
        t.addEventListener("click", () => { window.__patternClicks++; });
    }""")
    page.get_by_test_id("rows").focus()
    page.keyboard.press("p")
    page.wait_for_function("window.__patternClicks === 1")
    # / focuses the search box; Esc leaves it with its text
    page.get_by_test_id("rows").focus()
    page.keyboard.press("/")
    expect(page.get_by_test_id("search")).to_be_focused()

// Keyboard shortcuts, and the one list of them (`SHORTCUTS`) that the detail pane
// shows when nothing is selected and the `?` help shows under the query syntax. In a
// text field only Escape counts: it leaves the field and keeps its text. Outside,
// Escape undoes the innermost thing: the help, then the context view, then the
// selection.

import { view } from "./state.js";
import { $, el } from "./dom.js";
import { viewport, scrollToPos } from "./table.js";
import { moveSelection, jumpError } from "./navigation.js";
import { setFollow } from "./follow.js";
import { clearSelection } from "./selection.js";
import { searchInput, closeQueryHelp } from "./toolbar.js";
import { showContext, leaveContext } from "./context.js";
import { flash } from "./notices.js";

/** [keys, what they do], in the order shown. */
export const SHORTCUTS = [
  ["/", "search"],
  ["Esc", "leave the search box, the context view, the selection"],
  ["\u2191 \u2193  k j", "move the selection"],
  ["e / E", "next / previous error"],
  ["c", "context: the records around the selected one in its stream"],
  ["p", "patterns panel"],
  ["f", "follow new records"],
  ["Home / End", "first row / follow"],
  ["?", "query syntax and these keys"],
  ["drag", "on the timeline or the plot: zoom into a time range (double-click zooms out)"],
];

/** The shortcuts as a <dl> (class `cls`). */
export function shortcutList(cls = "shortcuts") {
  const keys = el("dl", cls);
  for (const [k, v] of SHORTCUTS) keys.append(el("dt", null, k), el("dd", null, v));
  return keys;
}

/** Show the context of the selected row (`c`). */
function contextOfSelected() {
  if (view.selected < 0) { flash("Select a row first: c shows the records around it."); return; }
  showContext(view.selected);
}

/** Open the patterns panel (patterns.js's toggle, when the page has it). */
function togglePatterns() {
  document.querySelector('[data-testid="patterns-toggle"]')?.click();
}

/** Open or close the query help (`?`). */
function toggleHelp() {
  const help = $("query-help");
  if (help && typeof help.togglePopover === "function") help.togglePopover();
}

/** Escape outside a text field: the help, else the context view, else the selection. */
function escape() {
  if (closeQueryHelp()) return;
  if (leaveContext()) return;
  if (view.selected >= 0) clearSelection();
}

document.addEventListener("keydown", (e) => {
  const t = e.target;
  const typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  if (typing) {
    if (e.key === "Escape") {
      e.preventDefault();
      if (!closeQueryHelp()) { t.blur(); viewport.focus(); } // keeps the text
    }
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  switch (e.key) {
    case "/": e.preventDefault(); searchInput.focus(); searchInput.select(); break;
    case "?": e.preventDefault(); toggleHelp(); break;
    case "f": setFollow(!view.follow); break;
    case "e": jumpError(1); break;
    case "E": jumpError(-1); break;
    case "c": contextOfSelected(); break;
    case "p": togglePatterns(); break;
    case "ArrowDown": case "j": e.preventDefault(); moveSelection(1); break;
    case "ArrowUp": case "k": e.preventDefault(); moveSelection(-1); break;
    case "End": e.preventDefault(); setFollow(true); break;
    case "Home": e.preventDefault(); if (view.follow) setFollow(false); scrollToPos(0, "top"); break;
    case "Escape": escape(); break;
    default: break;
  }
});

// the keys in the `?` help, under the query syntax
const help = $("query-help");
if (help) {
  const list = shortcutList("shortcuts");
  list.setAttribute("data-testid", "key-help");
  help.append(el("h3", null, "Keys"), list);
}

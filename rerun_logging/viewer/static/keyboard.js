// Keyboard shortcuts (listed in the detail pane when nothing is selected). In a text
// field only Escape counts: it leaves the field and keeps its text.

import { view } from "./state.js";
import { viewport, scrollToPos } from "./table.js";
import { moveSelection, jumpError } from "./navigation.js";
import { setFollow } from "./follow.js";
import { clearSelection } from "./selection.js";
import { searchInput, closeQueryHelp } from "./toolbar.js";

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
    case "f": setFollow(!view.follow); break;
    case "e": jumpError(1); break;
    case "E": jumpError(-1); break;
    case "ArrowDown": e.preventDefault(); moveSelection(1); break;
    case "ArrowUp": e.preventDefault(); moveSelection(-1); break;
    case "End": e.preventDefault(); setFollow(true); break;
    case "Home": e.preventDefault(); if (view.follow) setFollow(false); scrollToPos(0, "top"); break;
    case "Escape":
      if (view.selected >= 0) clearSelection();
      break;
    default: break;
  }
});

// Follow mode (keep the newest rows in view) and the "N new" badge that counts rows
// arrived while not following; clicking the badge follows again. This module owns
// `view.follow` and `view.newCount`.

import { view, dirty, schedule } from "./state.js";
import { $ } from "./dom.js";
import { fmtCount } from "./format.js";

const followBtn = $("follow"), badge = $("new-badge");

/** Turn follow mode on (scroll to the newest, clear the badge) or off. */
export function setFollow(on) {
  view.follow = on;
  followBtn.setAttribute("aria-pressed", on ? "true" : "false");
  if (on) {
    view.newCount = 0;
    dirty.table = true; // the draw scrolls to the bottom while following
    schedule();
  }
  updateBadge();
}

/** `n` more rows are shown: counted on the badge when not following (ignored when following). */
export function markNew(n) {
  if (view.follow) return;
  view.newCount += n;
  updateBadge();
}

/** No row counts as new any more (the rows shown were rebuilt). */
export function clearNew() {
  view.newCount = 0;
  updateBadge();
}

/** Show the badge when not following and rows arrived since. */
function updateBadge() {
  const show = !view.follow && view.newCount > 0;
  badge.hidden = !show;
  if (show) badge.textContent = fmtCount(view.newCount) + " new \u2193";
}

followBtn.addEventListener("click", () => setFollow(!view.follow));
badge.addEventListener("click", () => setFollow(true));

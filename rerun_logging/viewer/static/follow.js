// Follow mode (keep the newest rows in view) and the "N new" badge that counts rows
// arrived while not following; clicking the badge follows again.

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
    view.scrollBottomPending = true;
    dirty.table = true;
    schedule();
  }
  updateBadge();
}

/** Show the badge when not following and rows arrived since. */
export function updateBadge() {
  const show = !view.follow && view.newCount > 0;
  badge.hidden = !show;
  if (show) badge.textContent = fmtCount(view.newCount) + " new \u2193";
}

followBtn.addEventListener("click", () => setFollow(!view.follow));
badge.addEventListener("click", () => setFollow(true));

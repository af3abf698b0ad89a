// DOM helpers: element lookup and creation, and search highlighting. Log strings are
// always put in as text (textContent / text nodes), never as HTML.

export const $ = (id) => document.getElementById(id);

/** A new `tag` element with class `cls` and text `text` (both optional). */
export const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
};

/** Put `text` into `node` with every case-insensitive match of `q` in a <mark>. */
export function setHighlighted(node, text, q) {
  if (!q) { node.textContent = text; return; }
  const lower = text.toLowerCase();
  let at = lower.indexOf(q);
  if (at < 0 || lower.length !== text.length) { node.textContent = text; return; }
  node.textContent = "";
  let from = 0;
  while (at >= 0) {
    if (at > from) node.appendChild(document.createTextNode(text.slice(from, at)));
    const m = document.createElement("mark");
    m.textContent = text.slice(at, at + q.length);
    node.appendChild(m);
    from = at + q.length;
    at = lower.indexOf(q, from);
  }
  if (from < text.length) node.appendChild(document.createTextNode(text.slice(from)));
}

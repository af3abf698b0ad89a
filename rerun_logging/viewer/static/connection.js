// The WebSocket to the viewer: connect, reconnect with backoff (the status shows a
// countdown), and send. What the messages mean is messages.js's job; this module
// only hands them over through the callbacks given to `connect`.

import { view, api, dirty, schedule } from "./state.js";
import { $ } from "./dom.js";

const statusEl = $("status");
let ws = null;
let attempts = 0;
let retryTimer = null, countdownTimer = null;
let handlers = { onOpen() {}, onMessage() {} };

function setStatus(state, text) {
  statusEl.setAttribute("data-state", state);
  statusEl.textContent = text;
  dirty.table = true;
  schedule();
}

function wsUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return proto + "//" + location.host + "/ws" + location.search;
}

/** True when a message can be sent now. */
export function isOpen() {
  return view.connected && ws !== null && ws.readyState === WebSocket.OPEN;
}

/** Send `text` (the caller checks `isOpen` first). */
export function send(text) { ws.send(text); }

/**
 * Connect (and keep reconnecting). `h.onOpen()` runs on each new connection (the
 * server then sends a fresh snapshot), `h.onMessage(ev)` on each message.
 */
export function connect(h = handlers) {
  handlers = h;
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
  setStatus("connecting", "connecting\u2026");
  let sock;
  try {
    sock = new WebSocket(wsUrl());
  } catch (e) {
    scheduleReconnect();
    return;
  }
  ws = sock;
  sock.binaryType = "arraybuffer";
  sock.onopen = () => {
    if (ws !== sock) return;
    attempts = 0;
    view.connected = true;
    api.connected = true;
    handlers.onOpen();
    setStatus("live", "live");
  };
  sock.onmessage = (ev) => { if (ws === sock) handlers.onMessage(ev); };
  sock.onclose = () => {
    if (ws !== sock) return;
    view.connected = false;
    api.connected = false;
    ws = null;
    scheduleReconnect();
  };
  sock.onerror = () => {};
}

function scheduleReconnect() {
  const delay = Math.min(10000, 500 * 2 ** Math.min(attempts, 5));
  attempts++;
  const until = performance.now() + delay;
  const tick = () => {
    const s = Math.max(0, Math.ceil((until - performance.now()) / 1000));
    setStatus("disconnected", "disconnected \u00b7 reconnecting in " + s + "s");
  };
  tick();
  countdownTimer = setInterval(tick, 250);
  retryTimer = setTimeout(() => connect(), delay);
}

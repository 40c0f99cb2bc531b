// Watercooler: the server only nudges, the page fetches.
//
// First paint comes from the room's `recent` resource; the one EventSource opens at that
// resource's `last_event_id`; a nudge names a URL, which the ServiceWorker (when it controls the
// page) refreshes once and announces with `{type:"updated", url}`, and the page re-renders from
// the SW's cache. Without a controlling SW (first visit) the page fetches the URL itself.
//
// Modules: js/api.js (HTTP), js/connection.js (EventSource + live/reconnecting/offline),
// js/render.js (DOM, textContent only).

import {
  ROOM_RE,
  getJson,
  newIdempotencyKey,
  pathOf,
  postJson,
  presenceUrl,
  recentUrl,
  topicOf,
} from "./js/api.js";
import { Connection } from "./js/connection.js";
import {
  followLog,
  renderComposeError,
  renderMessages,
  renderPresence,
  renderRoomName,
  renderRooms,
  renderStatus,
} from "./js/render.js";

const NAME_KEY = "watercooler.author";
/** How long to wait for the SW's `updated` before fetching a nudged URL ourselves. */
const SW_FALLBACK_MS = 2500;
const PRESENCE_EVERY_MS = 15000;
/** The stream retries every few seconds; one probe read per this period is plenty. */
const PROBE_EVERY_MS = 4000;
const SHOWN = 10;

const state = {
  room: roomFromHash(),
  me: loadName(),
  messages: [],
  etag: null,
  lastEventId: null,
  renderedOffline: false,
  loadSeq: 0,
  renderedSeq: 0,
  sending: false,
  pending: null, // {room, author, text, key}: a failed post keeps its key for the retry
  fallbacks: new Map(), // url path -> timer, while waiting for the SW's `updated`
  lastProbe: 0,
};

const conn = new Connection({
  onState: renderStatus,
  onOpen() {
    // Back online after showing a stored copy (or nothing): the stream's replay only covers
    // events after the id we rendered, so read the resource again to be sure.
    if (state.renderedOffline || state.lastEventId === null) loadRecent();
    announcePresence();
  },
  onTrouble() {
    const now = Date.now();
    if (now - state.lastProbe < PROBE_EVERY_MS) return;
    state.lastProbe = now;
    loadRecent();
  },
  onChanged: onNudge,
  onReset() {
    loadRecent();
    loadPresence();
    loadRooms();
  },
});

// ---- reading ------------------------------------------------------------------------------

/** Reads the room's recent messages and renders them, unless a newer read already did. */
async function loadRecent({ fromCache = false } = {}) {
  const room = state.room;
  const seq = ++state.loadSeq;
  let res;
  try {
    res = await getJson(recentUrl(room), { fromCache });
  } catch (err) {
    if (fromCache) return loadRecent(); // not in the SW's cache after all: ask the network
    if (room !== state.room) return;
    conn.sawRead(true);
    if (!conn.isFor(topicOf(room))) conn.open(topicOf(room), null);
    return;
  }
  if (room !== state.room || seq < state.renderedSeq) return;
  const data = res.data;
  // A stored copy older than what is on screen would take messages away: keep the screen.
  const older =
    res.offline && state.lastEventId !== null && Number(data.last_event_id) < Number(state.lastEventId);
  conn.sawRead(res.offline);
  if (!older) {
    state.renderedSeq = seq;
    state.messages = Array.isArray(data.messages) ? data.messages : [];
    state.etag = res.etag || `"${data.last_event_id}"`;
    state.lastEventId = data.last_event_id ?? null;
    state.renderedOffline = res.offline;
    renderMessages(state.messages, state.me);
    // Where this rendering came from, for tests and for anyone debugging: `sw` is the normal
    // path of a nudge (the SW refreshed its copy and said so), `network` a read of our own.
    document.getElementById("messages").dataset.source = res.offline
      ? "offline"
      : fromCache
        ? "sw"
        : "network";
  }
  if (!conn.isFor(topicOf(room))) conn.open(topicOf(room), state.lastEventId);
}

async function loadPresence() {
  try {
    const { data } = await getJson(presenceUrl(state.room));
    renderPresence(Array.isArray(data.here) ? data.here : []);
  } catch {
    renderPresence([]); // ephemeral: nothing stored to fall back on, and nothing to report
  }
}

async function loadRooms() {
  try {
    const { data } = await getJson("/api/rooms");
    renderRooms(Array.isArray(data.rooms) ? data.rooms : [], state.room);
  } catch {
    renderRooms([], state.room);
  }
}

// ---- nudges -------------------------------------------------------------------------------

function onNudge({ url, etag }) {
  const path = pathOf(url);
  if (path === pathOf(presenceUrl(state.room))) {
    loadPresence(); // ephemeral, never cached: always our own fetch
    return;
  }
  const shown = path === pathOf(recentUrl(state.room));
  if (shown && etag && etag === state.etag) return; // already on screen
  const sw = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (sw) {
    sw.postMessage({ type: "nudge", url, etag });
    if (shown) armFallback(path, etag);
  } else if (shown) {
    loadRecent();
  }
}

/** If the SW never says `updated` (stopped, replaced, broken), fetch the URL ourselves. */
function armFallback(path, etag) {
  clearTimeout(state.fallbacks.get(path));
  state.fallbacks.set(
    path,
    setTimeout(() => {
      state.fallbacks.delete(path);
      if (path === pathOf(recentUrl(state.room)) && etag !== state.etag) loadRecent();
    }, SW_FALLBACK_MS),
  );
}

function onSwMessage(event) {
  const msg = event.data;
  if (!msg || msg.type !== "updated" || typeof msg.url !== "string") return;
  const path = pathOf(msg.url);
  clearTimeout(state.fallbacks.get(path));
  state.fallbacks.delete(path);
  if (path === pathOf(recentUrl(state.room))) loadRecent({ fromCache: true });
}

// ---- writing ------------------------------------------------------------------------------

async function onSubmit(event) {
  event.preventDefault();
  if (state.sending) return; // one post at a time: a double click or Enter must not post twice
  const form = event.currentTarget;
  const authorInput = form.elements.author;
  const textInput = form.elements.text;
  const author = authorInput.value.trim();
  const text = textInput.value.trim();
  if (!author) {
    renderComposeError("Enter your name first.");
    authorInput.focus();
    return;
  }
  if (!text) {
    textInput.focus();
    return;
  }
  saveName(author);
  const room = state.room;
  const p = state.pending;
  const key =
    p && p.room === room && p.author === author && p.text === text ? p.key : newIdempotencyKey();
  state.pending = { room, author, text, key };

  state.sending = true;
  form.setAttribute("aria-busy", "true");
  form.querySelector("button[type=submit]").disabled = true;
  try {
    const msg = await postJson(`/api/rooms/${room}/messages`, { author, text }, key);
    state.pending = null;
    if (textInput.value.trim() === text) textInput.value = "";
    renderComposeError("");
    if (msg && room === state.room) showOwn(msg);
    announcePresence();
  } catch (err) {
    renderComposeError(err.message);
    if (err.code === "network") conn.sawRead(true);
  } finally {
    state.sending = false;
    form.removeAttribute("aria-busy");
    form.querySelector("button[type=submit]").disabled = false;
    textInput.focus();
  }
}

/** Shows our own message at once; the nudge that follows brings the authoritative list. */
function showOwn(msg) {
  if (state.messages.some((m) => m.id === msg.id)) return;
  state.messages = [...state.messages, msg].sort((a, b) => a.id - b.id).slice(-SHOWN);
  renderMessages(state.messages, state.me);
}

// ---- presence -----------------------------------------------------------------------------

async function announcePresence() {
  if (!state.me || !conn.streamOpen) return;
  try {
    await postJson(presenceUrl(state.room), { name: state.me });
  } catch {
    // Ephemeral and best effort: the next beat tries again.
  }
}

// ---- room and name ------------------------------------------------------------------------

function roomFromHash() {
  const name = decodeURIComponent(location.hash.replace(/^#/, "")).toLowerCase();
  return ROOM_RE.test(name) ? name : "general";
}

function loadName() {
  try {
    return localStorage.getItem(NAME_KEY) || "";
  } catch {
    return "";
  }
}

function saveName(name) {
  state.me = name;
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // Storage may be disabled; the name then lasts for this page only.
  }
}

function enterRoom(room) {
  state.room = room;
  state.messages = [];
  state.etag = null;
  state.lastEventId = null;
  state.renderedOffline = false;
  state.renderedSeq = state.loadSeq;
  state.pending = null;
  conn.close();
  renderRoomName(room);
  renderMessages([], state.me);
  renderPresence([]);
  loadRooms();
  loadRecent();
  loadPresence();
}

// ---- start --------------------------------------------------------------------------------

function start() {
  const form = document.getElementById("compose");
  form.elements.author.value = state.me;
  form.addEventListener("submit", onSubmit);
  followLog();

  addEventListener("hashchange", () => {
    const room = roomFromHash();
    if (room !== state.room) enterRoom(room);
  });

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", onSwMessage);
    navigator.serviceWorker.startMessages();
    navigator.serviceWorker
      .register("/sw.js", { scope: "/" })
      .catch((err) => console.info("Watercooler works without its ServiceWorker:", err.message));
  }

  setInterval(announcePresence, PRESENCE_EVERY_MS);
  enterRoom(state.room);
  (state.me ? form.elements.text : form.elements.author).focus({ preventScroll: true });
}

start();

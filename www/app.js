// Watercooler: the server only nudges, the page fetches.
//
// First paint comes from the room's `recent` resource. One tab of the browser leads (js/tabs.js)
// and holds the one EventSource, opened at the `last_event_id` of what it rendered (or, after a
// handover, at the last id the old leader saw). A nudge names a URL: the leader hands it to the
// ServiceWorker, which refreshes its cached copy once and tells every tab `{type:"updated"}`;
// each tab then re-renders from the SW's cache without a request of its own. Tabs that no SW
// controls yet (first visit) hear the nudge on the BroadcastChannel and fetch for themselves.
// Messages go up through an outbox in IndexedDB (js/outbox.js), so nothing typed offline is lost.
//
// Signing in (js/account.js) changes what the one stream may carry and which rooms can be
// read, so every tab re-renders on an account change and the leader reopens its stream. An
// outbox entry belongs to the account that typed it and goes up only under that account.
//
// Modules: js/api.js (HTTP), js/connection.js (the stream and the shown connection state),
// js/tabs.js (leader election, BroadcastChannel), js/outbox.js (unsent messages),
// js/update.js (SW registration, new-version prompt), js/account.js (who is signed in,
// sign-in and sign-out), js/render.js and js/account-view.js (DOM, textContent only).

import {
  ApiError,
  ROOMS_URL,
  ROOM_RE,
  createRoom,
  getJson,
  newIdempotencyKey,
  olderUrl,
  pathOf,
  postJson,
  presenceUrl,
  recentUrl,
  roomOfUrl,
  setMember,
} from "./js/api.js";
import {
  accountHint,
  endSession,
  forgetPrivateResponses,
  saveAccountHint,
  signIn,
  whoAmI,
} from "./js/account.js";
import {
  confirmSignOut,
  renderAccount,
  renderAccountBusy,
  renderAccountError,
  renderMemberError,
  renderMembers,
} from "./js/account-view.js";
import { Status, Stream } from "./js/connection.js";
import * as outbox from "./js/outbox.js";
import {
  followLog,
  followNewest,
  renderComposeError,
  renderDenied,
  renderMessages,
  renderNotice,
  renderOlder,
  renderPresence,
  renderRole,
  renderRoomError,
  renderRoomName,
  renderRooms,
  renderStatus,
  renderUpdate,
} from "./js/render.js";
import { Tabs } from "./js/tabs.js";
import { registerServiceWorker } from "./js/update.js";

const NAME_KEY = "watercooler.author";
/** How long to wait for the SW's `updated` before fetching a nudged URL ourselves. */
const SW_FALLBACK_MS = 2500;
const PRESENCE_EVERY_MS = 15000;
/** The stream retries every few seconds; one probe read per this period is plenty. */
const PROBE_EVERY_MS = 4000;
/** While the outbox holds messages, try again this often even without a sign of the network. */
const OUTBOX_RETRY_MS = 5000;
/** The size of `recent`: fewer messages than this means the room has no older ones. */
const RECENT_COUNT = 10;
const OLDER_PAGE = 20;

const state = {
  room: roomFromHash(),
  me: loadName(),
  messages: [], // confirmed, oldest first: `recent` plus whatever older pages were loaded
  pending: [], // this room's outbox entries, in the order typed
  etag: null,
  lastEventId: null, // of the rendered `recent`
  renderedOffline: false,
  loadSeq: 0,
  renderedSeq: 0,
  older: { more: false, loading: false, failed: false },
  fallbacks: new Map(), // url path -> timer, while waiting for the SW's `updated`
  firstRender: null, // resolves once the room's first read has settled (either way)
  lastProbe: 0,
  lastSeen: null, // the newest event id any leader of this browser reported
  replace: false, // after a reset: the next `recent` replaces the list instead of extending it
  account: accountHint(), // who is signed in, as far as this page knows (null: nobody)
  rooms: new Map(), // room name -> private?, from the last room list read
  denied: "", // why the current room cannot be shown, or ""
  added: new Map(), // room -> names added as members from this page
  outboxHeld: false, // while a sign-out decides, nothing leaves the outbox
};

const status = new Status((s) => {
  renderStatus(s);
  if (tabs.isLeader) tabs.post({ type: "state", state: s });
});
const tabs = new Tabs(onTabMessage);
let stream = null; // only the leader has one

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
    if (err.status === 401 || err.status === 403) showDenied(err.status);
    else if (err.code === "network") status.sawRead(true);
    return;
  }
  if (room !== state.room || seq < state.renderedSeq) return;
  state.denied = "";
  const data = res.data;
  // A stored copy older than what is on screen would take messages away: keep the screen.
  const older =
    res.offline && state.lastEventId !== null && Number(data.last_event_id) < Number(state.lastEventId);
  status.sawRead(res.offline);
  if (older) return;
  state.renderedSeq = seq;
  mergeRecent(Array.isArray(data.messages) ? data.messages : []);
  state.etag = res.etag || `"${data.last_event_id}"`;
  state.lastEventId = data.last_event_id ?? null;
  state.renderedOffline = res.offline;
  render();
  // Where this rendering came from, for tests and for anyone debugging: `sw` is the normal
  // path of a nudge (the SW refreshed its copy and said so), `network` a read of our own.
  document.getElementById("messages").dataset.source = res.offline ? "offline" : fromCache ? "sw" : "network";
}

/**
 * Puts a fresh `recent` list on screen. Older messages already shown stay when the new list
 * overlaps them (the reader keeps their place); with no overlap, messages may be missing in
 * between, so the list starts again from `recent` and older ones load on demand.
 */
function mergeRecent(recent) {
  const ids = new Set(recent.map((m) => m.id));
  const overlaps = recent.length > 0 && state.messages.some((m) => ids.has(m.id));
  if (overlaps && !state.replace) {
    const first = recent[0].id;
    state.messages = [...state.messages.filter((m) => m.id < first), ...recent];
  } else {
    state.messages = recent;
    state.older = { more: recent.length >= RECENT_COUNT, loading: false, failed: false };
  }
  state.replace = false;
}

/** The server refused the room: say why instead of showing (stale) messages. */
function showDenied(httpStatus) {
  status.sawRead(false); // the server answered: it is there
  state.messages = [];
  state.older = { more: false, loading: false, failed: false };
  state.denied =
    httpStatus === 401 ? "Sign in to see this room." : "This room is private: ask one of its members to add you.";
  render();
  renderMembersPart();
  // Signed in as far as we knew, yet 401: the session ended elsewhere (expired, or signed out
  // from another browser). Ask the server who we are now.
  if (httpStatus === 401 && state.account) checkAccount();
}

async function loadOlder() {
  const room = state.room;
  const oldest = state.messages[0];
  if (!oldest || !state.older.more || state.older.loading) return;
  state.older = { ...state.older, loading: true, failed: false };
  renderOlder(state.older);
  try {
    const { data } = await getJson(olderUrl(room, oldest.id, OLDER_PAGE));
    if (room !== state.room) return;
    const page = (Array.isArray(data.messages) ? data.messages : []).filter((m) => m.id < oldest.id);
    const shown = state.messages[0] ? state.messages[0].id : Infinity;
    state.messages = [...page.filter((m) => m.id < shown), ...state.messages];
    state.older = { more: page.length >= OLDER_PAGE, loading: false, failed: false };
    render({ keepScroll: true });
  } catch {
    if (room === state.room) state.older = { more: true, loading: false, failed: true };
  }
  renderOlder(state.older);
}

async function loadPresence() {
  const room = state.room;
  try {
    const { data } = await getJson(presenceUrl(room));
    if (room === state.room) renderPresence(Array.isArray(data.here) ? data.here : []);
  } catch {
    if (room === state.room) renderPresence([]); // ephemeral: nothing stored to fall back on
  }
}

async function loadRooms({ fromCache = false } = {}) {
  try {
    const { data } = await getJson(ROOMS_URL, { fromCache });
    const rooms = Array.isArray(data.rooms) ? data.rooms : [];
    state.rooms = new Map(rooms.map((r) => [r.name, !!r.private]));
    // A room we were refused now shows in our list: someone made us a member. Read it again.
    if (state.denied && state.rooms.has(state.room)) loadRecent();
  } catch {
    if (fromCache) return loadRooms();
    // Unreachable: keep showing the rooms we knew.
  }
  renderRooms([...state.rooms].map(([name, p]) => ({ name, private: p })), state.room);
  renderMembersPart();
}

function render(opts) {
  renderMessages(state.messages, state.pending, state.me, opts);
  renderOlder(state.older);
  renderDenied(state.denied);
}

// ---- the leader: the one stream of this browser --------------------------------------------

/** Which room each other tab shows, so the leader refreshes only what someone looks at. */
const shownBy = new Map();

async function lead() {
  renderRole(true);
  // First connect: at what we rendered, so nothing falls between the GET and the stream. After
  // a handover: where the old leader stopped, so nothing falls between the two streams.
  await state.firstRender.catch(() => {});
  stream = new Stream({
    onOpen() {
      status.setStream("live");
      tabs.post({ type: "live" });
      onLive();
    },
    onTrouble() {
      status.setStream("reconnecting");
      const now = Date.now();
      // The stored copy (marked offline) is how we learn the server is gone, not just the stream.
      if (now - state.lastProbe >= PROBE_EVERY_MS) {
        state.lastProbe = now;
        loadRecent();
      }
    },
    onChanged(nudge, id) {
      if (id) noteSeen(id);
      leaderNudge(nudge);
    },
    onReset(id) {
      if (id) noteSeen(id);
      tabs.post({ type: "reset" });
      onReset();
    },
    onForbidden(topic) {
      tabs.post({ type: "forbidden", topic });
      onForbidden(topic);
    },
  });
  tabs.post({ type: "who" }); // every tab says again which room it shows
  const from = state.lastSeen ?? state.lastEventId;
  if (from !== null) noteSeen(from); // so a later leader resumes here even if nothing happens
  stream.open(from);
}

function noteSeen(id) {
  state.lastSeen = id; // the leader keeps it too, for the `who` of a tab that starts later
  tabs.post({ type: "seen", id });
}

function leaderNudge(nudge) {
  const { url, etag } = nudge;
  if (nudge.ephemeral) {
    tabs.post({ type: "presence", url });
    onPresenceNudge(url);
    return;
  }
  const path = pathOf(url);
  const room = roomOfUrl(path);
  const wanted = path === ROOMS_URL || (room && (room === state.room || [...shownBy.values()].includes(room)));
  if (!wanted) return;
  // The one refresh for the whole browser: the SW GETs once and tells every tab it controls.
  const sw = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (sw) sw.postMessage({ type: "nudge", url, etag });
  tabs.post({ type: "nudge", url, etag, viaSw: !!sw });
  onNudge({ url, etag, viaSw: !!sw });
}

// ---- what every tab does with news, from its own stream or from the leader -----------------

function onTabMessage(msg) {
  switch (msg.type) {
    case "who":
      tabs.post({ type: "showing", room: state.room });
      if (tabs.isLeader) tabs.post({ type: "state", state: status.state, seen: state.lastSeen });
      break;
    case "showing":
      if (tabs.isLeader) shownBy.set(msg.from, msg.room);
      break;
    case "bye":
      shownBy.delete(msg.from);
      break;
    case "seen":
      state.lastSeen = msg.id;
      break;
    case "state":
      if (tabs.isLeader) break;
      if (msg.seen && state.lastSeen === null) state.lastSeen = msg.seen;
      status.setStream(msg.state);
      break;
    case "live":
      if (!tabs.isLeader) onLive();
      break;
    case "nudge":
      if (!tabs.isLeader) onNudge(msg);
      break;
    case "presence":
      onPresenceNudge(msg.url);
      break;
    case "reset":
      onReset();
      break;
    case "outbox":
      loadPending();
      break;
    case "sent":
      onSent(msg.entry, msg.message);
      break;
    case "forbidden":
      if (!tabs.isLeader) onForbidden(msg.topic);
      break;
    case "account":
      // Another tab signed in or out: the cookie is shared, so this tab is too.
      if ((msg.name ?? null) !== state.account) {
        const wasPrivate = !!state.rooms.get(state.room);
        setAccount(msg.name ?? null);
        afterAccountChange(wasPrivate);
      }
      break;
  }
}

function onNudge({ url, etag, viaSw }) {
  const path = pathOf(url);
  const sw = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (path === ROOMS_URL) {
    if (!sw) loadRooms(); // a controlled tab waits for the SW's `updated`
    return;
  }
  if (path !== pathOf(recentUrl(state.room))) return;
  if (etag && etag === state.etag) return; // already on screen
  if (!sw) {
    loadRecent();
    return;
  }
  // The leader had no SW to hand it to (it predates the SW): hand it over from here; the SW
  // folds the same nudge from several tabs into one request.
  if (!viaSw) sw.postMessage({ type: "nudge", url, etag });
  armFallback(path, etag);
}

/** If the SW never says `updated` (stopped, replaced, broken), read the URL ourselves. */
function armFallback(path, etag) {
  clearTimeout(state.fallbacks.get(path));
  state.fallbacks.set(
    path,
    setTimeout(async () => {
      state.fallbacks.delete(path);
      if (path !== pathOf(recentUrl(state.room)) || etag === state.etag) return;
      await loadRecent({ fromCache: true }); // the SW may have refreshed it without telling us
      if (path === pathOf(recentUrl(state.room)) && etag && etag !== state.etag) loadRecent();
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
  else if (path === ROOMS_URL) loadRooms({ fromCache: true });
}

function onPresenceNudge(url) {
  if (roomOfUrl(url) === state.room) loadPresence(); // ephemeral, never cached: always our own fetch
}

/** A membership was withdrawn: leave that room's view and say why. */
function onForbidden(topic) {
  const room = topic.startsWith("rooms/") ? topic.slice("rooms/".length) : null;
  loadRooms();
  if (room && room === state.room) leaveRoom(`You no longer have access to #${room}.`);
}

/** The stream is (back) up: the server is there. */
function onLive() {
  // After showing a stored copy (or nothing), the stream's replay only covers events after the
  // id we rendered, so read the resource again to be sure.
  if (state.renderedOffline || state.lastEventId === null) loadRecent();
  flushOutbox();
  announcePresence();
}

/** The server could not resume our stream: everything shown may be stale. */
function onReset() {
  state.replace = true;
  loadRecent();
  loadPresence();
  loadRooms();
}

// ---- writing: every message goes through the outbox -----------------------------------------

async function onSubmit(event) {
  event.preventDefault();
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
  // Signed in, the server takes the account's name as the author and refuses another one.
  if (state.account && author !== state.account) {
    authorInput.value = state.account;
    renderComposeError(`Signed in as ${state.account}, you write under that name.`);
    return;
  }
  // Cleared before anything waits, so a second submit in the same moment finds nothing to send.
  textInput.value = "";
  renderComposeError("");
  if (author !== state.me) {
    saveName(author);
    announcePresence();
  }
  // The key is chosen now and stays with the message through every retry, tab and reload.
  const entry = await outbox.add({
    room: state.room,
    author,
    text,
    key: newIdempotencyKey(),
    account: state.account,
  });
  if (entry.room === state.room) {
    state.pending = [...state.pending, entry];
    render();
    followNewest();
  }
  tabs.post({ type: "outbox" });
  flushOutbox();
}

let flushing = null;
let flushAgain = false;

/** Sends the outbox in order; several calls at once fold into one more pass. */
function flushOutbox() {
  if (flushing) {
    flushAgain = true;
    return flushing;
  }
  flushing = outbox
    .flush({
      send: (e) => postJson(`/api/rooms/${e.room}/messages`, { author: e.author, text: e.text }, e.key),
      accepts: ownEntry,
      held: () => state.outboxHeld,
      onSent(entry, message) {
        tabs.post({ type: "sent", entry, message });
        onSent(entry, message);
      },
      onRejected(entry, err) {
        tabs.post({ type: "outbox" });
        dropPending(entry);
        renderComposeError(`“${entry.text.slice(0, 40)}” was not sent: ${err.message}`);
      },
    })
    .catch((err) => console.warn("outbox:", err))
    .finally(() => {
      flushing = null;
      if (flushAgain) {
        flushAgain = false;
        flushOutbox();
      }
    });
  return flushing;
}

/** A message left the outbox: show it as sent, where the pending one was, in one step. */
function onSent(entry, message) {
  state.pending = state.pending.filter((e) => e.key !== entry.key);
  if (message && message.room === state.room && !state.messages.some((m) => m.id === message.id)) {
    state.messages = [...state.messages, message].sort((a, b) => a.id - b.id);
  }
  render();
}

function dropPending(entry) {
  state.pending = state.pending.filter((e) => e.key !== entry.key);
  render();
}

async function loadPending() {
  const room = state.room;
  const entries = await outbox.all().catch(() => []);
  if (room !== state.room) return;
  state.pending = entries.filter((e) => e.room === room && ownEntry(e));
  render();
}

/**
 * Whether an outbox entry belongs to whoever is signed in now. Words typed under one account
 * must not go up under another's session (or none), and are not shown to the next person at
 * this device either: they wait until their account signs in here again.
 */
function ownEntry(entry) {
  return (entry.account ?? null) === state.account;
}

// ---- presence -----------------------------------------------------------------------------

async function announcePresence() {
  if (!state.me || status.state !== "live") return;
  try {
    await postJson(presenceUrl(state.room), { name: state.me });
  } catch {
    // Ephemeral and best effort: the next beat tries again.
  }
}

// ---- rooms and name -----------------------------------------------------------------------

/** The room the hash names, or `general` for anything else (a link may carry any hash). */
function roomFromHash() {
  let name;
  try {
    name = decodeURIComponent(location.hash.replace(/^#/, "")).toLowerCase();
  } catch {
    return "general"; // a malformed escape such as `#%` names no room
  }
  return ROOM_RE.test(name) ? name : "general";
}

async function onCreateRoom(event) {
  event.preventDefault();
  const input = event.currentTarget.elements.room;
  const name = input.value.trim().toLowerCase();
  if (!ROOM_RE.test(name)) {
    renderRoomError("Use lowercase letters, digits and dashes (up to 64), starting with a letter or digit.");
    input.focus();
    return;
  }
  const privateBox = event.currentTarget.elements.private;
  const isPrivate = privateBox.checked;
  try {
    const room = await createRoom(name, { isPrivate });
    state.rooms.set(name, !!(room && room.private));
  } catch (err) {
    renderRoomError(err instanceof ApiError ? err.message : String(err));
    return;
  }
  renderRoomError("");
  input.value = "";
  privateBox.checked = false;
  location.hash = name; // the hash is the route; the document stays `/`
  document.getElementById("text").focus();
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
  state.denied = "";
  renderNotice("");
  renderMemberError("");
  renderMembersPart();
  state.messages = [];
  state.pending = [];
  state.etag = null;
  state.lastEventId = null;
  state.renderedOffline = false;
  state.renderedSeq = state.loadSeq;
  state.older = { more: false, loading: false, failed: false };
  // Before the read, so the leader forwards any change that lands after it.
  tabs.post({ type: "showing", room });
  renderRoomName(room);
  render();
  renderPresence([]);
  loadRooms();
  loadPending();
  loadPresence();
  announcePresence();
  return loadRecent();
}

// ---- account --------------------------------------------------------------------------------

function setAccount(name) {
  const signedIn = !!name && name !== state.account;
  state.account = name || null;
  saveAccountHint(state.account);
  renderAccount(state.account);
  renderAccountError("");
  if (signedIn) {
    // Signed in: the display name is the account name (the server writes under no other).
    saveName(state.account);
    document.getElementById("author").value = state.account;
  }
  renderMembersPart();
}

/**
 * After signing in or out (here or in another tab): a private room shown before a sign-out is
 * left; otherwise the room is read again (it may be readable now, or no longer). The leader
 * reopens its stream, since the server decides what a stream may carry when it opens.
 */
function afterAccountChange(wasPrivate) {
  if (!state.account && wasPrivate) {
    leaveRoom("");
  } else {
    loadRooms();
    loadPending();
    loadRecent();
  }
  if (tabs.isLeader && stream) stream.open(state.lastSeen ?? state.lastEventId);
  flushOutbox(); // the new account's own unsent messages, if any
}

/** Goes to #general (the one room everyone may read) with `message` shown there. */
function leaveRoom(message) {
  history.replaceState(null, "", "#general"); // no hashchange: we enter the room ourselves
  enterRoom("general");
  renderNotice(message);
}

/** Confirms the hint with the server; offline, the hint stands. */
async function checkAccount() {
  let name;
  try {
    name = await whoAmI();
  } catch {
    return;
  }
  if (name === state.account) return;
  const wasPrivate = !!state.rooms.get(state.room);
  // The session ended without a sign-out here (expired, or ended elsewhere): what the SW kept
  // for it is not for whoever uses this device next.
  if (!name) await forgetPrivateResponses();
  setAccount(name);
  afterAccountChange(wasPrivate);
}

async function onSignIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const mode = event.submitter && event.submitter.value === "register" ? "register" : "login";
  const name = form.elements.name.value.trim();
  const password = form.elements.password.value;
  if (!name || !password) {
    renderAccountError("Enter your account name and password.");
    return;
  }
  renderAccountBusy(true);
  renderAccountError("");
  try {
    const account = await signIn(mode, name, password);
    form.reset();
    // Whatever the SW kept from an earlier session is not this account's to see offline.
    await forgetPrivateResponses();
    const wasPrivate = !!state.rooms.get(state.room);
    setAccount(account);
    tabs.post({ type: "account", name: account });
    afterAccountChange(wasPrivate);
  } catch (err) {
    renderAccountError(err.message);
  } finally {
    renderAccountBusy(false);
  }
}

let signingOut = false;

/**
 * Signs out: asks first when this account's messages wait in the outbox; then ends the session
 * at the server, has the SW forget private answers, tells the other tabs, and leaves a private
 * room. The outbox is held throughout: the dialog's count must stay true while the reader
 * decides, and a send racing the logout would go up under a session that ends halfway.
 */
async function onSignOut() {
  if (signingOut) return;
  signingOut = true;
  state.outboxHeld = true;
  renderAccountError("");
  try {
    const unsent = (await outbox.all().catch(() => [])).filter(ownEntry);
    if (unsent.length && !(await confirmSignOut(unsent.length))) return;
    renderAccountBusy(true);
    await endSession();
    // Resolves once the private answers are gone (or it is known they could not be removed).
    const forgotten = await forgetPrivateResponses();
    const wasPrivate = !!state.rooms.get(state.room);
    setAccount(null);
    tabs.post({ type: "account", name: null });
    afterAccountChange(wasPrivate);
    if (!forgotten) {
      renderAccountError(
        "Signed out, but this browser's copies of private rooms could not be removed: clear this site's data in the browser's settings.",
      );
    }
  } catch (err) {
    renderAccountError(err.message);
  } finally {
    renderAccountBusy(false);
    signingOut = false;
    state.outboxHeld = false;
    flushOutbox();
  }
}

// ---- members of a private room --------------------------------------------------------------

function renderMembersPart() {
  renderMembers({
    shown: !!state.account && !!state.rooms.get(state.room) && !state.denied,
    added: state.added.get(state.room) || [],
    onRemove: (name) => changeMember(name, false),
  });
}

async function onAddMember(event) {
  event.preventDefault();
  const input = event.currentTarget.elements.member;
  const name = input.value.trim();
  if (!name) {
    input.focus();
    return;
  }
  if (await changeMember(name, true)) input.value = "";
}

/** Adds or removes `name`; resolves to whether the server agreed. */
async function changeMember(name, member) {
  const room = state.room;
  try {
    await setMember(room, name, member);
  } catch (err) {
    renderMemberError(err.message);
    return false;
  }
  const names = (state.added.get(room) || []).filter((n) => n !== name);
  state.added.set(room, member ? [...names, name] : names);
  if (room === state.room) {
    renderMemberError("");
    renderMembersPart();
  }
  return true;
}

// ---- start --------------------------------------------------------------------------------

function start() {
  const form = document.getElementById("compose");
  if (!state.me && state.account) saveName(state.account);
  form.elements.author.value = state.me;
  renderAccount(state.account);
  document.getElementById("signin").addEventListener("submit", onSignIn);
  document.getElementById("signout").addEventListener("click", onSignOut);
  document.getElementById("add-member").addEventListener("submit", onAddMember);
  form.addEventListener("submit", onSubmit);
  document.getElementById("new-room").addEventListener("submit", onCreateRoom);
  document.getElementById("older").addEventListener("click", loadOlder);
  followLog(loadOlder);
  renderRole(false);

  addEventListener("hashchange", () => {
    const room = roomFromHash();
    if (room !== state.room) enterRoom(room);
  });
  addEventListener("online", flushOutbox);
  addEventListener("pagehide", () => tabs.post({ type: "bye" }));
  // Back from the back/forward cache: the leader forgot this tab at `pagehide`.
  addEventListener("pageshow", (e) => e.persisted && tabs.post({ type: "showing", room: state.room }));

  registerServiceWorker({
    onMessage: onSwMessage,
    onWaiting: renderUpdate,
    onControlled: () => {
      loadRooms();
      loadRecent();
    },
  });

  setInterval(() => {
    announcePresence();
    if (status.state === "live") loadPresence();
  }, PRESENCE_EVERY_MS);
  setInterval(() => {
    if (state.pending.length) flushOutbox();
  }, OUTBOX_RETRY_MS);

  state.firstRender = enterRoom(state.room);
  tabs.post({ type: "who" }); // learn the stream's state (and the last id) from the leader
  tabs.elect(lead);
  checkAccount();
  (state.me ? form.elements.text : form.elements.author).focus({ preventScroll: true });
}

start();

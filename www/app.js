// Watercooler: a chat on nudge. The server only nudges, the page fetches.
//
// nudge's browser modules (nudge/) hold the protocol: one stream per browser (one leading tab),
// the hand-off to the ServiceWorker, the connection state, and the outbox that sends every
// message exactly once. This file only composes the chat's views and says what each nudge event
// means for them. Each view owns its slice of the page:
//   js/room-view.js      the room's messages and unsent messages
//   js/rooms-view.js     the room list and the new-room form
//   js/here.js           who is here (presence, ephemeral)
//   js/compose.js        the compose form and the display name
//   js/account-panel.js  who is signed in, sign-in and sign-out
//   js/members.js        the members of a private room
//   js/notify-me.js      "Notify me" for the room shown (Web Push)
// js/api.js speaks HTTP; js/render.js and js/account-view.js write the DOM (textContent only).

import { Nudge, pathOf } from "./nudge/nudge.js";
import { Outbox } from "./nudge/outbox.js";
import { AccountPanel } from "./js/account-panel.js";
import { ROOM_RE, presenceUrl, recentUrl } from "./js/api.js";
import { Compose, upgradeEntry } from "./js/compose.js";
import { Members } from "./js/members.js";
import { NotifyMe } from "./js/notify-me.js";
import { Presence } from "./js/here.js";
import { followLog, renderComposeError, renderNotice, renderRole, renderStatus, renderUpdate } from "./js/render.js";
import { RoomView } from "./js/room-view.js";
import { RoomList } from "./js/rooms-view.js";

/** The room list and every room, in one stream: the tabs of a browser may show different rooms. */
const TOPICS = ["rooms", "rooms/*"];

let firstRender = null; // resolves once the first room's first read has settled (either way)
const current = () => room.room;

const nudge = new Nudge({
  topics: TOPICS,
  lastEventId: () => firstRender.then(() => room.lastEventId),
});
const outbox = new Outbox({
  name: "watercooler",
  principal: () => account.name,
  upgrade: upgradeEntry,
});
const account = new AccountPanel({ outbox, onChanged: onAccountChanged });
const compose = new Compose({
  outbox,
  room: current,
  account: () => account.name,
  onQueued: (entry) => room.addPending(entry),
  onRenamed: () => presence.announce(),
});
const room = new RoomView({
  nudge,
  outbox,
  me: () => compose.me,
  onDenied(status) {
    members.render();
    // Signed in as far as we knew, yet 401: the session ended elsewhere (expired, or signed
    // out from another browser). Ask the server who we are now.
    if (status === 401 && account.name) account.check();
  },
});
const rooms = new RoomList({
  current,
  onListed(fresh) {
    // A room we were refused now shows in our list: someone made us a member. Read it again.
    if (fresh && room.denied && rooms.has(room.room)) room.load();
    members.render();
  },
});
const notifyMe = new NotifyMe({ room: current, isPrivate: (name) => rooms.isPrivate(name) });
const presence = new Presence({ room: current, me: () => compose.me, live: () => nudge.state === "live" });
const members = new Members({
  room: current,
  shown: () => !!account.name && rooms.isPrivate(room.room) && !room.denied,
});

// ---- what nudge tells the page ----------------------------------------------------------------

nudge.addEventListener("state", (e) => renderStatus(e.detail.state));
nudge.addEventListener("lead", () => renderRole(true));
nudge.addEventListener("update", (e) => renderUpdate(e.detail.accept));
nudge.addEventListener("changed", (e) => {
  const { url, etag, cached } = e.detail;
  const path = pathOf(url);
  if (path === room.url) room.load({ cached, etag });
  else if (path === rooms.url) rooms.load({ cached });
  else if (path === presenceUrl(room.room)) presence.load(); // ephemeral: always our own read
});
// The stream is (back) up: the server is there.
nudge.addEventListener("open", () => {
  // After showing a stored copy (or nothing), the stream's replay only covers events after the
  // id we rendered, so read the room again to be sure.
  if (room.renderedOffline || room.lastEventId === null) room.load();
  outbox.flush();
  presence.announce();
});
// The server could not resume the stream: everything shown may be stale.
nudge.addEventListener("reset", () => {
  room.reset();
  presence.load();
  rooms.load();
});
// A membership was withdrawn: leave that room's view and say why.
nudge.addEventListener("forbidden", (e) => {
  const { topic } = e.detail;
  const name = topic.startsWith("rooms/") ? topic.slice("rooms/".length) : null;
  rooms.load();
  if (name && name === room.room) leaveRoom(`You no longer have access to #${name}.`);
});
// A first visit's SW took over: read again under it, so that it keeps a copy for offline.
nudge.addEventListener("controlled", () => {
  rooms.load();
  room.load();
});

outbox.addEventListener("sent", (e) => room.sent(e.detail.entry, e.detail.response));
outbox.addEventListener("change", () => room.loadPending());
outbox.addEventListener("rejected", (e) => {
  const { entry, error } = e.detail;
  room.dropPending(entry);
  renderComposeError(`“${entry.body.text.slice(0, 40)}” was not sent: ${error.message}`);
});

// ---- rooms and account ------------------------------------------------------------------------

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

function enterRoom(name) {
  renderNotice("");
  // Before the read, so the leader forwards any change that lands after it.
  nudge.watch([recentUrl(name), rooms.url, presenceUrl(name)]);
  const read = room.enter(name);
  members.enter();
  presence.enter();
  notifyMe.enter();
  rooms.load();
  return read;
}

/** Goes to #general (the one room everyone may read) with `message` shown there. */
function leaveRoom(message) {
  history.replaceState(null, "", "#general"); // no hashchange: we enter the room ourselves
  enterRoom("general");
  renderNotice(message);
}

/**
 * After signing in or out (here or in another tab): a private room shown before a sign-out is
 * left; otherwise the room is read again (it may be readable now, or no longer). The stream is
 * reopened, since the server decides what a stream may carry when it opens.
 */
function onAccountChanged(name, { signedIn }) {
  // Before the room list is read again: which chosen rooms were private is known now.
  notifyMe.accountChanged({ signedIn: !!name });
  if (signedIn) compose.useAccountName(name);
  members.render();
  if (!name && rooms.isPrivate(room.room)) {
    leaveRoom("");
  } else {
    rooms.load();
    room.loadPending();
    room.load();
  }
  nudge.reconnect();
  outbox.flush(); // the new account's own unsent messages, if any
}

// ---- start ------------------------------------------------------------------------------------

renderRole(false);
followLog(() => room.loadOlder());
document.getElementById("older").addEventListener("click", () => room.loadOlder());
addEventListener("hashchange", () => {
  const name = roomFromHash();
  if (name !== room.room) enterRoom(name);
});
firstRender = enterRoom(roomFromHash());
nudge.start();
account.check();
compose.start();

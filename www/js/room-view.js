// The room on screen: its messages (the `recent` resource plus older pages), this room's unsent
// messages from the outbox, and why it cannot be shown when the server refuses it.
//
// Reads of `recent` go through `nudge.fetch`, which is how the connection state learns that the
// server is gone (a stored copy) and how a nudge for what is already shown is skipped.

import { getJson, olderUrl, readJson, recentUrl } from "./api.js";
import { followNewest, renderDenied, renderMessages, renderOlder, renderRoomName } from "./render.js";

/** The size of `recent`: fewer messages than this means the room has no older ones. */
const RECENT_COUNT = 10;
const OLDER_PAGE = 20;
const NO_OLDER = { more: false, loading: false, failed: false };

export class RoomView {
  /**
   * `nudge` reads `recent`; `outbox` holds unsent messages; `me()` is the display name;
   * `onDenied(status)` hears that the server refused the room (401 or 403).
   */
  constructor({ nudge, outbox, me, onDenied }) {
    this.nudge = nudge;
    this.outbox = outbox;
    this.me = me;
    this.onDenied = onDenied;
    this.room = null;
    this.clear();
  }

  /** Forgets what was shown, before another room is read. */
  clear() {
    this.messages = []; // confirmed, oldest first: `recent` plus whatever older pages were loaded
    this.pending = []; // this room's outbox entries, in the order typed
    this.lastEventId = null; // of the rendered `recent`
    this.renderedOffline = false;
    this.loadSeq = this.loadSeq || 0;
    this.renderedSeq = this.loadSeq;
    this.older = NO_OLDER;
    this.denied = ""; // why the room cannot be shown, or ""
    this.replace = false; // after a reset: the next `recent` replaces the list instead of extending it
  }

  /** Shows `room` (empty until its read comes back); resolves once its first read settled. */
  enter(room) {
    this.room = room;
    this.clear();
    renderRoomName(room);
    this.render();
    this.loadPending();
    return this.load();
  }

  get url() {
    return recentUrl(this.room);
  }

  /**
   * Reads `recent` and renders it, unless a newer read already did. `cached`: from the SW's
   * copy (it said it refreshed it), `etag`: the version a nudge named.
   */
  async load({ cached = false, etag = null } = {}) {
    const room = this.room;
    const seq = ++this.loadSeq;
    let response, res;
    try {
      response = await this.nudge.fetch(recentUrl(room), { cached, etag, headers: { Accept: "application/json" } });
      res = await readJson(response);
    } catch (err) {
      if (room === this.room && (err.status === 401 || err.status === 403)) this.showDenied(err.status);
      return;
    }
    if (room !== this.room || seq < this.renderedSeq) return;
    this.denied = "";
    const data = res.data;
    // A stored copy older than what is on screen would take messages away: keep the screen.
    if (res.offline && this.lastEventId !== null && Number(data.last_event_id) < Number(this.lastEventId)) return;
    this.renderedSeq = seq;
    this.merge(Array.isArray(data.messages) ? data.messages : []);
    this.lastEventId = data.last_event_id ?? null;
    this.renderedOffline = res.offline;
    this.render();
    // Where this rendering came from, for tests and for anyone debugging: `sw` is the normal
    // path of a nudge (the SW refreshed its copy and said so), `network` a read of our own.
    document.getElementById("messages").dataset.source = response.source;
  }

  /**
   * Puts a fresh `recent` list on screen. Older messages already shown stay when the new list
   * overlaps them (the reader keeps their place); with no overlap, messages may be missing in
   * between, so the list starts again from `recent` and older ones load on demand.
   */
  merge(recent) {
    const ids = new Set(recent.map((m) => m.id));
    const overlaps = recent.length > 0 && this.messages.some((m) => ids.has(m.id));
    if (overlaps && !this.replace) {
      const first = recent[0].id;
      this.messages = [...this.messages.filter((m) => m.id < first), ...recent];
    } else {
      this.messages = recent;
      this.older = { more: recent.length >= RECENT_COUNT, loading: false, failed: false };
    }
    this.replace = false;
  }

  /** The server refused the room: say why instead of showing (stale) messages. */
  showDenied(httpStatus) {
    this.messages = [];
    this.older = NO_OLDER;
    this.denied =
      httpStatus === 401 ? "Sign in to see this room." : "This room is private: ask one of its members to add you.";
    this.render();
    this.onDenied(httpStatus);
  }

  async loadOlder() {
    const room = this.room;
    const oldest = this.messages[0];
    if (!oldest || !this.older.more || this.older.loading) return;
    this.older = { ...this.older, loading: true, failed: false };
    renderOlder(this.older);
    try {
      const { data } = await getJson(olderUrl(room, oldest.id, OLDER_PAGE));
      if (room !== this.room) return;
      const page = (Array.isArray(data.messages) ? data.messages : []).filter((m) => m.id < oldest.id);
      const shown = this.messages[0] ? this.messages[0].id : Infinity;
      this.messages = [...page.filter((m) => m.id < shown), ...this.messages];
      this.older = { more: page.length >= OLDER_PAGE, loading: false, failed: false };
      this.render({ keepScroll: true });
    } catch {
      if (room === this.room) this.older = { more: true, loading: false, failed: true };
    }
    renderOlder(this.older);
  }

  /** The server could not resume the stream: the next `recent` replaces the list. */
  reset() {
    this.replace = true;
    return this.load();
  }

  // ---- unsent messages (outbox entries of this room and account) ----------------------------

  async loadPending() {
    const room = this.room;
    const entries = await this.outbox.entries().catch(() => []);
    if (room !== this.room) return;
    this.pending = entries.filter((e) => e.room === room);
    this.render();
  }

  /** A message was just queued here. */
  addPending(entry) {
    if (entry.room !== this.room) return;
    this.pending = [...this.pending, entry];
    this.render();
    followNewest();
  }

  /** A message left the outbox: show it as sent, where the pending one was, in one step. */
  sent(entry, message) {
    this.pending = this.pending.filter((e) => e.key !== entry.key);
    if (message && message.room === this.room && !this.messages.some((m) => m.id === message.id)) {
      this.messages = [...this.messages, message].sort((a, b) => a.id - b.id);
    }
    this.render();
  }

  dropPending(entry) {
    this.pending = this.pending.filter((e) => e.key !== entry.key);
    this.render();
  }

  render(opts) {
    const pending = this.pending.map((e) => ({ key: e.key, author: e.body.author, text: e.body.text }));
    renderMessages(this.messages, pending, this.me(), opts);
    renderOlder(this.older);
    renderDenied(this.denied);
  }
}

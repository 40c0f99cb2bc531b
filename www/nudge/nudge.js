// nudge in the page: the server only nudges, the page fetches.
//
// One `Nudge` per page. One tab of the browser leads (tabs.js) and holds the one EventSource
// (stream.js), opened at the `last_event_id` of what the page rendered (or, after a handover, at
// the last id the old leader saw). A nudge names a URL: the leader hands it to the ServiceWorker,
// which refreshes its cached copy once and tells every tab `{type:"updated", url}`; each tab then
// reads the URL from the SW's cache without a request of its own. If the SW never says so, the
// tab reads it itself after a while (the fallback). Tabs that no SW controls yet (first visit)
// hear the nudge on the BroadcastChannel and read from the network.
//
// The page only listens (an EventTarget):
//   changed    {url, topic, etag, ephemeral, cached}: read `url` again, with
//              `nudge.fetch(url, { cached, etag })` (from the SW's cache when `cached`)
//   reset      the server could not resume the stream: read again everything shown
//   forbidden  {topic}: access to `topic` was withdrawn
//   state      {state}: `live`, `reconnecting` or `offline` (also `nudge.state`)
//   open       the stream is (back) up: the server is there (flush an outbox now)
//   lead       this tab now holds the browser's stream (also `nudge.isLeader`)
//   controlled a first visit's SW took control: read again what was shown, so the SW keeps it
//   update     {accept}: a new version of the SW waits; call `accept()` to take it (reloads)

import { registerServiceWorker } from "./service-worker.js";
import { Status } from "./status.js";
import { Stream } from "./stream.js";
import { Tabs } from "./tabs.js";

/** How long to wait for the SW's `updated` before reading a nudged URL ourselves. */
const SW_FALLBACK_MS = 2500;
/** While the stream is down, one probe read per this period tells "server gone" apart. */
const PROBE_EVERY_MS = 4000;

export class Nudge extends EventTarget {
  /**
   * `topics`: what the stream asks for (e.g. `["todos"]`); `streamUrl`: the event stream
   * (`/api/events`); `lastEventId`: the `last_event_id` of what the page rendered, or a
   * function returning it (or a promise of it), asked when this tab comes to lead;
   * `serviceWorker`: the SW script to register (`/sw.js`, `/sw.js?routes=/routes.js`), or
   * `null` for none; `name`: the lock and channel shared by this app's tabs.
   */
  constructor({
    topics,
    streamUrl = "/api/events",
    lastEventId = null,
    serviceWorker = "/sw.js",
    scope = "/",
    name = "nudge",
  }) {
    super();
    this.options = { topics, streamUrl, lastEventId, serviceWorker, scope };
    this.stream = null; // only the leader has one
    this.lastSeen = null; // the newest event id any leader of this browser reported
    this.watched = null; // paths this tab shows; null: every URL
    this.shownBy = new Map(); // tab id -> the paths it shows (null: every URL)
    this.etags = new Map(); // path -> ETag of the last read through `fetch`
    this.fallbacks = new Map(); // path -> timer, while waiting for the SW's `updated`
    this.lastProbe = 0;
    this.tabs = new Tabs((msg) => this.onTab(msg), {
      lock: `${name}-leader`,
      channel: name,
    });
    this.status = new Status((state) => {
      this.emit("state", { state });
      if (this.tabs.isLeader) this.tabs.post({ type: "state", state });
    });
    addEventListener("pagehide", () => this.tabs.post({ type: "bye" }));
    // Back from the back/forward cache: the leader forgot this tab at `pagehide`.
    addEventListener("pageshow", (e) => e.persisted && this.announce());
  }

  /** `live`, `reconnecting` or `offline`. */
  get state() {
    return this.status.state;
  }

  get isLeader() {
    return this.tabs.isLeader;
  }

  /** Registers the SW, learns the stream's state from the leader, and stands for election. */
  start() {
    this.status.update();
    if (this.options.serviceWorker) {
      registerServiceWorker({
        url: this.options.serviceWorker,
        scope: this.options.scope,
        onPost: (e) => this.onWorker(e.data, e.ports),
        onWaiting: (accept) => this.emit("update", { accept }),
        onControlled: () => this.emit("controlled"),
      });
    }
    this.tabs.post({ type: "who" }); // learn the stream's state (and the last id) from the leader
    this.tabs.elect(() => this.lead());
    return this;
  }

  /**
   * The URLs this tab shows: `changed` fires only for them, and the leader hands to the SW only
   * nudges that some tab shows. Call it before reading them, so no change falls in between.
   * Never called: every URL.
   */
  watch(urls) {
    this.watched = urls ? new Set(urls.map(pathOf)) : null;
    this.announce();
  }

  /** Opens the stream again (leader only): what it may carry is decided when it opens. */
  async reconnect() {
    if (!this.tabs.isLeader || !this.stream) return;
    const from = this.lastSeen ?? (await this.rendered());
    if (this.stream) this.stream.open(from);
  }

  /** The `last_event_id` the page rendered, as the app gives it, or null. */
  async rendered() {
    const given = this.options.lastEventId;
    try {
      return (await (typeof given === "function" ? given() : given)) ?? null;
    } catch {
      return null;
    }
  }

  /**
   * `fetch(url, init)` that feeds the connection state (a stored copy or no answer: offline)
   * and keeps the ETag, so a nudge for what is on screen already is not read again. With
   * `cached: true` it reads the SW's copy, and the network when the SW has none, or none at
   * `etag`. Resolves to the Response, with `source` added: `sw` (the SW's copy, as asked),
   * `offline` (a stored copy, the server being gone) or `network`; rejects only when no answer
   * came at all.
   */
  async fetch(url, { cached = false, etag = null, ...init } = {}) {
    if (cached) {
      try {
        const res = await fetch(url, { ...init, cache: "only-if-cached", mode: "same-origin" });
        if (res.ok && (!etag || res.headers.get("ETag") === etag)) return this.saw(url, res, "sw");
      } catch {
        // Not in the SW's cache after all: ask the network.
      }
    }
    let res;
    try {
      res = await fetch(url, init);
    } catch (err) {
      this.status.sawRead(true);
      throw err;
    }
    return this.saw(url, res, "network");
  }

  saw(url, res, source) {
    const mark = res.headers.get("X-Nudge-Cache");
    // `miss` with 503: the SW could reach no server and had no copy either.
    this.status.sawRead(mark === "offline" || (mark === "miss" && res.status === 503));
    res.source = mark === "offline" ? "offline" : source;
    const etag = res.headers.get("ETag");
    if (res.ok && etag) this.etags.set(pathOf(url), etag);
    return res;
  }

  // ---- the leader: the one stream of this browser --------------------------------------------

  async lead() {
    this.emit("lead");
    // First connect: at what the page rendered, so nothing falls between the GET and the
    // stream. After a handover: where the old leader stopped, so nothing falls in between.
    const rendered = await this.rendered();
    this.stream = new Stream(
      { url: this.options.streamUrl, topics: this.options.topics },
      {
        onOpen: () => {
          this.status.setStream("live");
          this.tabs.post({ type: "live" });
          this.emit("open");
        },
        onTrouble: () => {
          this.status.setStream("reconnecting");
          this.probe();
        },
        onChanged: (nudge, id) => {
          if (id) this.noteSeen(id);
          this.leaderNudge(nudge);
        },
        onReset: (id) => {
          if (id) this.noteSeen(id);
          this.tabs.post({ type: "reset" });
          this.emit("reset");
        },
        onForbidden: (topic) => {
          this.tabs.post({ type: "forbidden", topic });
          this.emit("forbidden", { topic });
        },
      },
    );
    this.tabs.post({ type: "who" }); // every tab says again what it shows
    const from = this.lastSeen ?? rendered;
    if (from !== null) this.noteSeen(from); // so a later leader resumes here even if nothing happens
    this.stream.open(from);
  }

  /**
   * A stored copy (marked offline) is how we learn the server is gone, not just the stream: the
   * page reads the first URL it shows again (through `fetch`, which judges the answer).
   */
  probe() {
    const now = Date.now();
    const [url] = this.watched || [];
    if (!url || now - this.lastProbe < PROBE_EVERY_MS) return;
    this.lastProbe = now;
    this.emit("changed", { url, topic: null, etag: null, ephemeral: false, cached: false });
  }

  noteSeen(id) {
    this.lastSeen = id;
    this.tabs.post({ type: "seen", id });
  }

  leaderNudge({ url, topic, etag, ephemeral }) {
    if (ephemeral) {
      // Never cached, so never the SW's: every tab that shows it reads it itself.
      this.tabs.post({ type: "ephemeral", url, topic });
      this.onEphemeral({ url, topic });
      return;
    }
    if (!this.wanted(pathOf(url))) return;
    // The one refresh for the whole browser: the SW GETs once and tells every tab it controls.
    const sw = navigator.serviceWorker && navigator.serviceWorker.controller;
    if (sw) sw.postMessage({ type: "nudge", url, etag });
    this.tabs.post({ type: "nudge", url, topic, etag, viaSw: !!sw });
    this.onNudge({ url, topic, etag, viaSw: !!sw });
  }

  /** Whether any tab of this browser shows `path`. */
  wanted(path) {
    const shows = (paths) => paths === null || paths.has(path);
    return shows(this.watched) || [...this.shownBy.values()].some(shows);
  }

  shows(url) {
    return this.watched === null || this.watched.has(pathOf(url));
  }

  announce() {
    this.tabs.post({ type: "showing", paths: this.watched && [...this.watched] });
  }

  // ---- what every tab does with news, from its own stream or from the leader -----------------

  onTab(msg) {
    if (Object.hasOwn(FROM_TABS, msg.type)) FROM_TABS[msg.type].call(this, msg, this.tabs.isLeader);
  }

  onEphemeral({ url, topic }) {
    if (this.shows(url)) this.emit("changed", { url, topic, etag: null, ephemeral: true, cached: false });
  }

  onNudge({ url, topic, etag, viaSw }) {
    if (!this.shows(url)) return;
    const path = pathOf(url);
    if (etag && etag === this.etags.get(path)) return; // already read
    const sw = navigator.serviceWorker && navigator.serviceWorker.controller;
    if (!sw) {
      this.emit("changed", { url, topic, etag, ephemeral: false, cached: false });
      return;
    }
    // The leader had no SW to hand it to (it predates the SW): hand it over from here; the SW
    // folds the same nudge from several tabs into one request.
    if (!viaSw) sw.postMessage({ type: "nudge", url, etag });
    this.armFallback(url, topic, etag);
  }

  /** If the SW never says `updated` (stopped, replaced, broken), read the URL ourselves. */
  armFallback(url, topic, etag) {
    const path = pathOf(url);
    clearTimeout(this.fallbacks.get(path));
    this.fallbacks.set(
      path,
      setTimeout(() => {
        this.fallbacks.delete(path);
        if (!this.shows(url) || (etag && etag === this.etags.get(path))) return;
        // The SW may have refreshed it without telling us: its copy, if it is at `etag`.
        this.emit("changed", { url, topic, etag, ephemeral: false, cached: true });
      }, SW_FALLBACK_MS),
    );
  }

  onWorker(msg, ports = []) {
    // After a Web Push the SW asks focused windows what they show, to spare them a
    // notification about what is on screen already: the URLs given to `watch` (null: every URL).
    if (msg && msg.type === "showing?" && ports[0]) {
      ports[0].postMessage({ type: "showing", paths: this.watched && [...this.watched] });
      return;
    }
    if (!msg || msg.type !== "updated" || typeof msg.url !== "string") return;
    const path = pathOf(msg.url);
    clearTimeout(this.fallbacks.get(path));
    this.fallbacks.delete(path);
    if (this.shows(msg.url)) {
      this.emit("changed", { url: msg.url, topic: null, etag: null, ephemeral: false, cached: true });
    }
  }

  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * What the other tabs' posts mean (the BroadcastChannel protocol of this module, not the wire
 * contract): `(msg, leader)`, with `this` the Nudge and `leader` whether this tab leads.
 */
const FROM_TABS = {
  /** A tab started or a new leader asks: say what this tab shows (and, leading, the state). */
  who(_msg, leader) {
    this.announce();
    if (leader) this.tabs.post({ type: "state", state: this.status.state, seen: this.lastSeen });
  },
  showing(msg, leader) {
    if (leader) this.shownBy.set(msg.from, Array.isArray(msg.paths) ? new Set(msg.paths) : null);
  },
  bye(msg) {
    this.shownBy.delete(msg.from);
  },
  seen(msg) {
    this.lastSeen = msg.id;
  },
  state(msg, leader) {
    if (leader) return;
    if (msg.seen && this.lastSeen === null) this.lastSeen = msg.seen;
    this.status.setStream(msg.state);
  },
  live(_msg, leader) {
    if (!leader) this.emit("open");
  },
  nudge(msg, leader) {
    if (!leader) this.onNudge(msg);
  },
  ephemeral(msg) {
    this.onEphemeral(msg);
  },
  reset() {
    this.emit("reset");
  },
  forbidden(msg, leader) {
    if (!leader) this.emit("forbidden", { topic: msg.topic });
  },
};

/** Path + query of a URL, so absolute and relative spellings of one resource compare equal. */
export function pathOf(url) {
  const u = new URL(url, location.origin);
  return u.pathname + u.search;
}

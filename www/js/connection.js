// The browser's one EventSource, held by the leading tab only (js/tabs.js), and the
// connection state every tab shows.
//
// The stream asks for every room (`rooms/*`) and the room list (`rooms`) at once: the tabs of
// one browser may show different rooms, and one stream must serve them all. Event ids are the
// server's log ids, global across topics, so one "last event id" resumes the whole set.

/** Topics of the one stream: the room list and every room. */
export const TOPICS = ["rooms", "rooms/*"];

const REOPEN_MIN_MS = 1000;
const REOPEN_MAX_MS = 30000;

export class Stream {
  /**
   * `handlers`: onOpen(), onTrouble(), onChanged(nudge, id), onReset(id), onForbidden(topic);
   * `id` is the event's id, or "" for an ephemeral (presence) nudge, which the server does not
   * log.
   */
  constructor(handlers) {
    this.h = handlers;
    this.es = null;
    this.lastEventId = null;
    this.open_ = false;
    this.reopenDelay = REOPEN_MIN_MS;
    this.reopenTimer = 0;
  }

  /** Whether the stream is connected right now. */
  get isOpen() {
    return this.open_;
  }

  /** Connects, resuming after `lastEventId` so nothing falls between a GET and the stream. */
  open(lastEventId) {
    this.close();
    this.lastEventId = lastEventId ?? null;
    this.connect();
  }

  close() {
    clearTimeout(this.reopenTimer);
    if (this.es) this.es.close();
    this.es = null;
    this.open_ = false;
  }

  connect() {
    let url = `/api/events?${TOPICS.map((t) => `topic=${encodeURIComponent(t)}`).join("&")}`;
    if (this.lastEventId !== null && this.lastEventId !== "") {
      url += `&lastEventId=${encodeURIComponent(this.lastEventId)}`;
    }
    const es = new EventSource(url);
    this.es = es;
    es.addEventListener("open", () => {
      if (this.es !== es) return;
      this.open_ = true;
      this.reopenDelay = REOPEN_MIN_MS;
      this.h.onOpen();
    });
    es.addEventListener("error", () => {
      if (this.es !== es) return;
      this.open_ = false;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. a non-stream answer from a proxy): retry ourselves, slower
        // each time, resuming from the last id we saw.
        es.close();
        this.es = null;
        this.reopenTimer = setTimeout(() => this.connect(), this.reopenDelay);
        this.reopenDelay = Math.min(this.reopenDelay * 2, REOPEN_MAX_MS);
      }
      this.h.onTrouble();
    });
    es.addEventListener("changed", (e) => {
      if (this.es !== es) return;
      if (e.lastEventId) this.lastEventId = e.lastEventId;
      let nudge;
      try {
        nudge = JSON.parse(e.data);
      } catch {
        return;
      }
      // A presence nudge has no id of its own; EventSource would repeat the previous one.
      const id = nudge && nudge.ephemeral ? "" : e.lastEventId;
      if (nudge && typeof nudge.url === "string") this.h.onChanged(nudge, id);
    });
    // A membership was withdrawn: the server ends that room's topic on this stream (the rest
    // of the stream goes on). Not in the log, so it carries no id.
    es.addEventListener("forbidden", (e) => {
      if (this.es !== es) return;
      let data;
      try {
        data = JSON.parse(e.data);
      } catch {
        return;
      }
      if (data && typeof data.topic === "string") this.h.onForbidden(data.topic);
    });
    es.addEventListener("reset", (e) => {
      if (this.es !== es) return;
      if (e.lastEventId) this.lastEventId = e.lastEventId;
      this.h.onReset(e.lastEventId);
    });
  }
}

/**
 * The state shown to the user, judged from two signs, because navigator.onLine stays true when
 * only the server is gone: the stream (the leader's own, or as the leader reports it) and this
 * tab's reads (an answer marked `X-Nudge-Cache: offline`, or no answer at all, means offline).
 */
export class Status {
  constructor(onChange) {
    this.onChange = onChange;
    this.stream = "reconnecting";
    this.offlineSign = false;
    this.state = null;
    addEventListener("online", () => this.update());
    addEventListener("offline", () => this.update());
  }

  /** `live`, `reconnecting`, or (as a follower hears it from the leader) `offline`. */
  setStream(stream) {
    this.stream = stream;
    // A live stream proves the server is there, whatever an older read said.
    if (stream === "live") this.offlineSign = false;
    this.update();
  }

  /** Records what the latest read said about the server: `true` = it was the stored copy. */
  sawRead(offline) {
    this.offlineSign = offline;
    this.update();
  }

  update() {
    let state;
    if (this.stream === "live" && navigator.onLine) state = "live";
    else if (this.offlineSign || this.stream === "offline" || !navigator.onLine) state = "offline";
    else state = "reconnecting";
    if (state !== this.state) {
      this.state = state;
      this.onChange(state);
    }
  }
}

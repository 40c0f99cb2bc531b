// The page's one EventSource, and the connection state shown to the user.
//
// The state is judged from two signs, because navigator.onLine stays true when only the server
// is gone: the stream (open = live; retrying = reconnecting) and the reads (an answer marked
// `X-Nudge-Cache: offline` by the ServiceWorker, or no answer at all, means offline).

const REOPEN_MIN_MS = 1000;
const REOPEN_MAX_MS = 30000;

export class Connection {
  /**
   * `handlers`: onState(state), onOpen(), onTrouble(), onChanged({url, topic, etag}), onReset().
   */
  constructor(handlers) {
    this.h = handlers;
    this.es = null;
    this.topic = null;
    this.lastEventId = null;
    this.streamOpen = false;
    this.offlineSign = false;
    this.reopenDelay = REOPEN_MIN_MS;
    this.reopenTimer = 0;
    this.state = null;
    addEventListener("online", () => this.update());
    addEventListener("offline", () => this.update());
  }

  /** Subscribes to `topic`, resuming after `lastEventId` so nothing falls between GET and stream. */
  open(topic, lastEventId) {
    this.close();
    this.topic = topic;
    this.lastEventId = lastEventId ?? null;
    this.connect();
  }

  /** True once `open` was called for `topic` (whether or not the stream is up right now). */
  isFor(topic) {
    return this.topic === topic;
  }

  close() {
    clearTimeout(this.reopenTimer);
    if (this.es) this.es.close();
    this.es = null;
    this.topic = null;
    this.streamOpen = false;
    this.update();
  }

  connect() {
    let url = `/api/events?topic=${this.topic}`;
    if (this.lastEventId !== null && this.lastEventId !== "") {
      url += `&lastEventId=${encodeURIComponent(this.lastEventId)}`;
    }
    const es = new EventSource(url);
    this.es = es;
    es.addEventListener("open", () => {
      if (this.es !== es) return;
      this.streamOpen = true;
      this.offlineSign = false;
      this.reopenDelay = REOPEN_MIN_MS;
      this.update();
      this.h.onOpen();
    });
    es.addEventListener("error", () => {
      if (this.es !== es) return;
      this.streamOpen = false;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. a non-stream answer from a proxy): retry ourselves, slower
        // each time, resuming from the last id we saw.
        es.close();
        this.es = null;
        this.reopenTimer = setTimeout(() => this.topic && this.connect(), this.reopenDelay);
        this.reopenDelay = Math.min(this.reopenDelay * 2, REOPEN_MAX_MS);
      }
      this.update();
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
      if (nudge && typeof nudge.url === "string") this.h.onChanged(nudge);
    });
    es.addEventListener("reset", (e) => {
      if (this.es !== es) return;
      if (e.lastEventId) this.lastEventId = e.lastEventId;
      this.h.onReset();
    });
  }

  /** Records what the latest read said about the server: `true` = it was the stored copy. */
  sawRead(offline) {
    this.offlineSign = offline;
    this.update();
  }

  update() {
    let state;
    if (this.streamOpen && navigator.onLine) state = "live";
    else if (this.offlineSign || !navigator.onLine) state = "offline";
    else state = "reconnecting";
    if (state !== this.state) {
      this.state = state;
      this.h.onState(state);
    }
  }
}

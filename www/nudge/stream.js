// The browser's one EventSource, held by the leading tab only (tabs.js).
//
// One stream asks for every topic the app gives at once: the tabs of one browser may show
// different things, and one stream must serve them all. Event ids are the server's log ids,
// global across topics, so one "last event id" resumes the whole set.

const REOPEN_MIN_MS = 1000;
const REOPEN_MAX_MS = 30000;

export class Stream {
  /**
   * `url`: the stream endpoint (`/api/events`); `topics`: what it asks for (`topic=` each);
   * `handlers`: onOpen(), onTrouble(), onChanged(nudge, id), onReset(id), onForbidden(topic).
   * `id` is the event's id, or "" for an ephemeral nudge, which the server does not log.
   */
  constructor({ url, topics }, handlers) {
    this.url = url;
    this.topics = topics;
    this.h = handlers;
    this.es = null;
    this.lastEventId = null;
    this.reopenDelay = REOPEN_MIN_MS;
    this.reopenTimer = 0;
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
  }

  connect() {
    const query = this.topics.map((t) => `topic=${encodeURIComponent(t)}`);
    if (this.lastEventId !== null && this.lastEventId !== "") {
      query.push(`lastEventId=${encodeURIComponent(this.lastEventId)}`);
    }
    const es = new EventSource(`${this.url}${this.url.includes("?") ? "&" : "?"}${query.join("&")}`);
    this.es = es;
    const mine = (listener) => (e) => this.es === es && listener(e);
    es.addEventListener(
      "open",
      mine(() => {
        this.reopenDelay = REOPEN_MIN_MS;
        this.h.onOpen();
      }),
    );
    es.addEventListener(
      "error",
      mine(() => {
        if (es.readyState === EventSource.CLOSED) {
          // The browser gave up (e.g. a non-stream answer from a proxy): retry ourselves, slower
          // each time, resuming from the last id we saw.
          es.close();
          this.es = null;
          this.reopenTimer = setTimeout(() => this.connect(), this.reopenDelay);
          this.reopenDelay = Math.min(this.reopenDelay * 2, REOPEN_MAX_MS);
        }
        this.h.onTrouble();
      }),
    );
    es.addEventListener(
      "changed",
      mine((e) => {
        if (e.lastEventId) this.lastEventId = e.lastEventId;
        const nudge = parse(e.data);
        // An ephemeral nudge has no id of its own; EventSource would repeat the previous one.
        const id = nudge && nudge.ephemeral ? "" : e.lastEventId;
        if (nudge && typeof nudge.url === "string") this.h.onChanged(nudge, id);
      }),
    );
    // Access to one topic was withdrawn: the server ends that topic on this stream (the rest of
    // the stream goes on). Not in the log, so it carries no id.
    es.addEventListener(
      "forbidden",
      mine((e) => {
        const data = parse(e.data);
        if (data && typeof data.topic === "string") this.h.onForbidden(data.topic);
      }),
    );
    es.addEventListener(
      "reset",
      mine((e) => {
        if (e.lastEventId) this.lastEventId = e.lastEventId;
        this.h.onReset(e.lastEventId);
      }),
    );
  }
}

function parse(data) {
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
}

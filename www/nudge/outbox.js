// Writes not yet confirmed by the server, kept in IndexedDB so they survive a reload.
//
// `send(request)` stores the request durably, with an idempotency key chosen now, before the
// first attempt; entries go up strictly in the order they were given (by `seq`), one at a time,
// and leave the outbox only after a 2xx (or a 4xx that no retry can fix). A retry of a write
// whose answer was lost carries the same `Idempotency-Key`, so the server applies it once.
// One tab at a time sends (a Web Lock), so two tabs never race through the same entries; a pass
// that waited for the lock reads the outbox afresh, so nothing is sent twice by us.
//
// An entry belongs to the principal that was current when it was given (`principal()`, e.g. who
// is signed in) and goes up only while that principal is current again: a write made under one
// session must not go up under another's.
//
// Events (an EventTarget): `sent` {entry, response} (the parsed JSON answer, in every tab),
// `rejected` {entry, error}, `change` (the outbox changed elsewhere: read `entries()` again).
//
// With a ServiceWorker in control whose route table gives the URL the `outbox` strategy
// (sw/README.md), the SW is the outbox: `send` goes straight to `fetch` with the key and the
// principal (`Nudge-Principal`, which the SW keeps and never sends on); the SW sends it or
// queues it (202 with `Nudge-Outbox-Entry`) and replays it even with no tab open, and tells every
// tab what became of it. This page then keeps only what the SW could not take (a fetch that
// failed through it: no such route), in its own queue below, which is otherwise for a page no SW
// controls yet (the first visit). The page's queue drains through the SW once it is in control.

const STORE = "outbox";
/** The SW's answer to a write it queued names the entry in this header. */
const QUEUED_HEADER = "Nudge-Outbox-Entry";
/** How long `entries()` waits for the SW's list before it does without. */
const LIST_MS = 3000;
/** While entries wait, try again this often even without a sign of the network. */
const RETRY_MS = 5000;

export class Outbox extends EventTarget {
  /**
   * `name`: the IndexedDB database (and the lock and channel) of this outbox; `principal()`:
   * who writes now (null: nobody in particular); `upgrade(entry)`: brings an entry stored by an
   * older version of the app to the current shape.
   */
  constructor({ name = "nudge", principal = () => null, upgrade = (e) => e } = {}) {
    super();
    this.name = name;
    this.principal = () => principal() ?? null;
    this.upgrade = upgrade;
    this.dbPromise = null;
    this.memory = null; // where entries live when IndexedDB is unavailable: this page only
    this.held = false;
    this.flushing = null;
    this.flushAgain = false;
    this.waiting = false; // whether the last pass left entries behind
    this.inflight = []; // sent through a controlling SW, not answered yet
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.addEventListener("message", ({ data }) => {
        if (data && data.type === "outbox") this.fromWorker(data);
      });
    }
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(`${name}-outbox`) : null;
    if (this.channel) {
      this.channel.onmessage = ({ data }) => {
        if (data && data.type === "sent") this.emit("sent", { entry: data.entry, response: data.response });
        else if (data && data.type === "change") this.emit("change");
      };
    }
    addEventListener("online", () => this.flush());
    setInterval(() => this.waiting && this.flush(), RETRY_MS);
  }

  /**
   * Queues `{url, method = "POST", body, headers}` (other fields stay with the entry, for the
   * app's own display) and starts sending; resolves with the stored entry, which carries its
   * `key` (the idempotency key), `seq` and `principal`.
   */
  async send(request) {
    const entry = {
      method: "POST",
      ...request,
      key: newKey(),
      principal: this.principal(),
      queued_at: Date.now(),
    };
    if (worker()) {
      this.inflight.push(entry);
      this.through(entry);
      return entry;
    }
    return this.keep(entry);
  }

  /** Stores `entry` in this page's queue and starts sending. */
  async keep(entry) {
    const seq = await this.run("readwrite", (s) => s.add(entry));
    if (seq === null) {
      entry.seq = this.memory.length ? this.memory[this.memory.length - 1].seq + 1 : 1;
      this.memory.push(entry);
    } else {
      entry.seq = seq;
    }
    this.post({ type: "change" });
    this.waiting = true;
    this.flush();
    return entry;
  }

  /** Sends `entry` through the controlling SW; what it cannot take goes to this page's queue. */
  async through(entry) {
    let res = null;
    try {
      res = await fetch(entry.url, { method: entry.method, headers: this.headersOf(entry, true), body: bodyOf(entry) });
    } catch {
      // The SW did not take it (no outbox route for it): this page's queue keeps it.
    }
    this.inflight = this.inflight.filter((e) => e !== entry);
    if (res && res.status === 202 && res.headers.get(QUEUED_HEADER)) return this.emit("change");
    if (!res || (!res.ok && !permanent(res.status))) return this.keep(entry);
    await this.settled(entry, res);
  }

  /** A write's answer: `sent` in every tab, or `rejected`. */
  async settled(entry, res) {
    const body = await res.json().catch(() => null);
    if (res.ok) {
      this.post({ type: "sent", entry, response: body });
      this.emit("sent", { entry, response: body });
    } else {
      this.post({ type: "change" });
      this.emit("rejected", { entry, error: errorOf(res, body) });
    }
  }

  /** What the SW says its outbox did. */
  fromWorker({ event, entry, status, response }) {
    const shown = this.fromWorkerEntry(entry);
    if (event === "sent") {
      this.emit("sent", { entry: shown, response: parseJson(response) });
    } else if (event === "failed" && (shown.principal ?? null) === this.principal()) {
      const res = { status };
      const error = errorOf(res, parseJson(response));
      if (status === 0) error.message = "it waited too long to be sent.";
      this.emit("rejected", { entry: shown, error });
    } else {
      this.emit("change");
    }
  }

  /** An entry of the SW's outbox as this page's entries look (`seq`, a parsed `body`). */
  fromWorkerEntry(e) {
    let body = e.body;
    if (body instanceof ArrayBuffer) body = new TextDecoder().decode(body);
    return this.upgrade({ ...e, seq: e.id, body: typeof body === "string" ? (parseJson(body) ?? body) : body });
  }

  /** The current principal's entries, in the order given (the SW's and this page's). */
  async entries() {
    const [mine, theirs] = await Promise.all([this.own(), this.workerEntries()]);
    const principal = this.principal();
    const all = [...mine, ...theirs, ...this.inflight];
    const keys = new Set();
    return all.filter((e) => (e.principal ?? null) === principal && !keys.has(e.key) && keys.add(e.key));
  }

  /** The current principal's entries of this page's own queue. */
  async own() {
    const principal = this.principal();
    return (await this.all()).filter((e) => (e.principal ?? null) === principal);
  }

  /** The SW's waiting entries of this principal, or none when no SW answers. */
  async workerEntries() {
    const sw = worker();
    if (!sw) return [];
    const channel = new MessageChannel();
    let timer;
    const listed = await new Promise((resolve) => {
      channel.port1.onmessage = ({ data }) => resolve((data && data.entries) || []);
      timer = setTimeout(() => resolve([]), LIST_MS);
      sw.postMessage({ type: "outbox", op: "list", principal: this.principal() }, [channel.port2]);
    });
    clearTimeout(timer);
    channel.port1.close();
    return listed.map((e) => this.fromWorkerEntry(e));
  }

  /** Tells the controlling SW `op` (flush, hold, release) and who writes now. */
  tell(op) {
    const sw = worker();
    if (sw) sw.postMessage({ type: "outbox", op, principal: this.principal() });
  }

  /** While held (e.g. a sign-out is deciding), nothing leaves the outbox. */
  hold() {
    this.held = true;
    this.tell("hold");
  }

  release() {
    this.held = false;
    this.tell("release");
    this.flush();
  }

  /** Sends in order; calls made while a pass runs fold into one more pass. */
  flush() {
    this.tell(this.held ? "hold" : "flush");
    if (this.flushing) {
      this.flushAgain = true;
      return this.flushing;
    }
    const pass = () => this.pass();
    this.flushing = (navigator.locks ? navigator.locks.request(`${this.name}-outbox`, pass) : pass())
      .catch((err) => console.warn("outbox:", err))
      .finally(() => {
        this.flushing = null;
        if (this.flushAgain) {
          this.flushAgain = false;
          this.flush();
        }
      });
    return this.flushing;
  }

  /** Stops at the first network or server failure, leaving that entry and the later ones. */
  async pass() {
    for (;;) {
      if (this.held) return;
      // Only this page's queue: the SW sends its own entries.
      const [next] = await this.own();
      this.waiting = !!next;
      if (!next) return;
      let res;
      try {
        res = await fetch(next.url, { method: next.method, headers: this.headersOf(next, !!worker()), body: bodyOf(next) });
      } catch {
        return; // offline: keep it, in its place
      }
      if (!res.ok && !permanent(res.status)) return; // a server in trouble: keep it, in its place
      await this.remove(next.seq);
      // A SW in control now took it into its own outbox: it goes on from there.
      if (res.status === 202 && res.headers.get(QUEUED_HEADER)) {
        this.post({ type: "change" });
        continue;
      }
      await this.settled(next, res);
    }
  }

  /** The request headers of `entry`; `principal`: name it for a controlling SW. */
  headersOf(entry, principal) {
    const headers = {
      "Content-Type": "application/json",
      Accept: "application/json",
      ...entry.headers,
      "Idempotency-Key": entry.key,
    };
    if (principal) headers["Nudge-Principal"] = encodeURIComponent(JSON.stringify(entry.principal ?? null));
    return headers;
  }

  // ---- storage ----------------------------------------------------------------------------

  db() {
    if (!this.dbPromise) {
      this.dbPromise = new Promise((resolve, reject) => {
        const req = indexedDB.open(this.name, 1);
        req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "seq", autoIncrement: true });
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      }).catch((err) => {
        console.warn("outbox: IndexedDB unavailable, keeping entries in memory:", err);
        this.memory = this.memory || [];
        return null;
      });
    }
    return this.dbPromise;
  }

  /** Runs one request in its own transaction; resolves with its result (null: no IndexedDB). */
  async run(mode, work) {
    const conn = await this.db();
    if (!conn) return null;
    return new Promise((resolve, reject) => {
      const tx = conn.transaction(STORE, mode);
      const req = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = tx.onabort = () => reject(tx.error);
    });
  }

  async all() {
    const rows = await this.run("readonly", (s) => s.getAll());
    return (rows === null ? [...this.memory] : rows).map(this.upgrade).sort((a, b) => a.seq - b.seq);
  }

  async remove(seq) {
    const done = await this.run("readwrite", (s) => s.delete(seq));
    if (done === null && this.memory) this.memory = this.memory.filter((e) => e.seq !== seq);
  }

  post(msg) {
    if (this.channel) this.channel.postMessage(msg);
  }

  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** An Error with the server's JSON error (`{"error":{"code","message"}}`) when it sent one. */
function errorOf(res, body) {
  const e = (body && body.error) || {};
  const err = new Error(e.message || `The server answered ${res.status}.`);
  err.status = res.status;
  err.code = e.code || "http";
  return err;
}

/** The SW that controls this page, if any. */
function worker() {
  return ("serviceWorker" in navigator && navigator.serviceWorker.controller) || null;
}

/** 4xx that no retry can fix (408 and 429 ask to come back later). */
function permanent(status) {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

function bodyOf(entry) {
  return typeof entry.body === "string" ? entry.body : JSON.stringify(entry.body);
}

function parseJson(text) {
  if (typeof text !== "string") return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A fresh key per write, kept with it through every retry, tab and reload. */
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

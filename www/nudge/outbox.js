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
// `rejected` {entry, error} (in the tab that sent it), `change` (another tab changed the outbox).

const STORE = "outbox";
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

  /** The current principal's entries, in the order given. */
  async entries() {
    const principal = this.principal();
    return (await this.all()).filter((e) => (e.principal ?? null) === principal);
  }

  /** While held (e.g. a sign-out is deciding), nothing leaves the outbox. */
  hold() {
    this.held = true;
  }

  release() {
    this.held = false;
    this.flush();
  }

  /** Sends in order; calls made while a pass runs fold into one more pass. */
  flush() {
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
      const [next] = await this.entries();
      this.waiting = !!next;
      if (!next) return;
      let res;
      try {
        res = await fetch(next.url, {
          method: next.method,
          headers: {
            "Content-Type": "application/json",
            Accept: "application/json",
            ...next.headers,
            "Idempotency-Key": next.key,
          },
          body: typeof next.body === "string" ? next.body : JSON.stringify(next.body),
        });
      } catch {
        return; // offline: keep it, in its place
      }
      const permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
      if (!res.ok && !permanent) return; // a server in trouble: keep it, in its place
      const body = await res.json().catch(() => null);
      await this.remove(next.seq);
      if (res.ok) {
        this.post({ type: "sent", entry: next, response: body });
        this.emit("sent", { entry: next, response: body });
      } else {
        this.post({ type: "change" });
        this.emit("rejected", { entry: next, error: errorOf(res, body) });
      }
    }
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

/** A fresh key per write, kept with it through every retry, tab and reload. */
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

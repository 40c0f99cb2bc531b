// Messages not yet confirmed by the server, kept in IndexedDB so they survive a reload.
//
// Each entry is stored before the first attempt to send it, with the idempotency key chosen at
// compose time; entries go up strictly in the order they were typed (by `seq`), one at a time,
// and leave the outbox only after the server's 201 (or a 4xx that no retry can fix). A retry of
// a POST whose answer was lost carries the same key, so the server stores the message once.
// One tab at a time flushes (a Web Lock), so two tabs never race through the same entries; a
// flush that waited for the lock reads the outbox afresh, so nothing is sent twice by us.

const DB_NAME = "watercooler";
const STORE = "outbox";
const FLUSH_LOCK = "nudge-outbox";

/** Where entries live when IndexedDB is unavailable (private modes): this page only. */
let memory = null;
let dbPromise = null;

function db() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "seq", autoIncrement: true });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    }).catch((err) => {
      console.warn("outbox: IndexedDB unavailable, keeping messages in memory:", err);
      memory = memory || [];
      return null;
    });
  }
  return dbPromise;
}

/** Runs one request in its own transaction and resolves with its result. */
async function run(mode, work) {
  const conn = await db();
  if (!conn) return null;
  return new Promise((resolve, reject) => {
    const tx = conn.transaction(STORE, mode);
    const req = work(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
}

/**
 * Stores `{room, author, text, key, account}` durably (`account`: who was signed in when it
 * was typed, or null); resolves with the stored entry.
 */
export async function add(entry) {
  const record = { ...entry, queued_at: Date.now() };
  const seq = await run("readwrite", (s) => s.add(record));
  if (seq === null) {
    record.seq = memory.length ? memory[memory.length - 1].seq + 1 : 1;
    memory.push(record);
  } else {
    record.seq = seq;
  }
  return record;
}

/** Every entry, in the order typed. */
export async function all() {
  const rows = await run("readonly", (s) => s.getAll());
  return (rows === null ? [...memory] : rows).sort((a, b) => a.seq - b.seq);
}

export async function remove(seq) {
  const done = await run("readwrite", (s) => s.delete(seq));
  if (done === null && memory) memory = memory.filter((e) => e.seq !== seq);
}

/**
 * Sends every entry in order with `send(entry)` (which resolves with the stored message, or
 * throws an ApiError). Stops at the first network-level or server failure, leaving that entry
 * and those after it for the next flush. `onSent(entry, message)` and `onRejected(entry, err)`
 * report each outcome. Waits while another tab flushes, then sends whatever is still left.
 *
 * Only entries that `accepts(entry)` are sent (an entry belongs to the account that typed it;
 * the others wait for it to sign in again here), and the pass ends early once `held()` is true
 * (a sign-out is deciding what happens to the rest).
 */
export async function flush({ send, onSent, onRejected, accepts = () => true, held = () => false }) {
  const body = async () => {
    for (;;) {
      if (held()) return;
      const next = (await all()).find(accepts);
      if (!next) return;
      try {
        const message = await send(next);
        await remove(next.seq);
        onSent(next, message);
      } catch (err) {
        const permanent = err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;
        if (!permanent) return; // offline or a server in trouble: keep it, in its place
        await remove(next.seq);
        onRejected(next, err);
      }
    }
  };
  if (!navigator.locks) return body();
  return navigator.locks.request(FLUSH_LOCK, body);
}

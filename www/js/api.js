// HTTP side of the page: reads (through the ServiceWorker when one controls the page) and writes.
// Messages go up through nudge's outbox (nudge/outbox.js), not from here.
// Reads report whether the answer is the SW's stored copy, because that header is the only
// reliable sign the server is gone: navigator.onLine stays true when just the server is down.

/** Room names the server accepts; anything else in the hash falls back to `general`. */
export const ROOM_RE = /^[a-z0-9][a-z0-9-]{0,63}$/;

export const ROOMS_URL = "/api/rooms";
export const recentUrl = (room) => `/api/rooms/${room}/recent`;
export const presenceUrl = (room) => `/api/rooms/${room}/presence`;
export const messagesUrl = (room) => `/api/rooms/${room}/messages`;
/** A page of messages older than `before` (a message id), oldest first. */
export const olderUrl = (room, before, limit) =>
  `/api/rooms/${room}/messages?before=${before}&limit=${limit}`;


/** An error whose message is fit to show to the user. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = "network" } = {}) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * GETs a JSON resource. `fromCache` asks the SW for its stored copy only (after it told us it
 * refreshed it), so a nudge costs one network request per browser, made by the SW.
 * Resolves to `{ data, etag, offline }`.
 */
export async function getJson(url, { fromCache = false } = {}) {
  const init = fromCache
    ? { cache: "only-if-cached", mode: "same-origin", headers: { Accept: "application/json" } }
    : { headers: { Accept: "application/json" } };
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new ApiError("The server cannot be reached.", { code: "network" });
  }
  return readJson(res);
}

/** The JSON of a read's answer, as `{ data, etag, offline }`; throws an ApiError for an error. */
export async function readJson(res) {
  if (!res.ok) throw await errorFrom(res);
  return {
    data: await res.json(),
    etag: res.headers.get("ETag"),
    offline: res.headers.get("X-Nudge-Cache") === "offline",
  };
}

/** POSTs JSON (presence, sign-in): writes that wait in no outbox. */
export async function postJson(url, body) {
  let res;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError("You seem to be offline: your message was not sent.", { code: "network" });
  }
  if (!res.ok) throw await errorFrom(res);
  return res.status === 204 ? null : res.json();
}

async function errorFrom(res) {
  let message = `The server answered ${res.status}.`;
  let code = "http";
  try {
    const body = await res.json();
    if (body && body.error) {
      message = body.error.message || message;
      code = body.error.code || code;
    }
  } catch {
    // Not JSON (e.g. a proxy page): the status line says enough.
  }
  return new ApiError(message, { status: res.status, code });
}

/**
 * `PUT /api/rooms/{room}`: creates the room (200 when it already exists). A private room needs
 * a signed-in caller, who becomes its first member.
 */
export async function createRoom(room, { isPrivate = false } = {}) {
  const init = { method: "PUT", headers: { Accept: "application/json" } };
  if (isPrivate) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify({ private: true });
  }
  const res = await send(`/api/rooms/${room}`, init);
  return res.json();
}

/** `PUT` (add) or `DELETE` (remove) a member of a private room; 204 either way. */
export async function setMember(room, name, member) {
  const url = `/api/rooms/${room}/members/${encodeURIComponent(name)}`;
  await send(url, { method: member ? "PUT" : "DELETE", headers: { Accept: "application/json" } });
}

/** A write that is not a message (no outbox): offline it fails at once, with a message to show. */
async function send(url, init) {
  let res;
  try {
    res = await fetch(url, init);
  } catch {
    throw new ApiError("The server cannot be reached: try again once you are online.");
  }
  if (!res.ok) throw await errorFrom(res);
  return res;
}

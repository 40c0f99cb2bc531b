// Web Push: the wake-up when no page is open. The server pushes only which URLs changed; the
// ServiceWorker refreshes them into its cache and then shows a notification worded from the
// fresh copy (sw/README.md, "Web Push"). This module subscribes the browser and tells the
// server which topics it wants (the server pushes only what the signed-in person may read).
//
// A real push needs a push service (the browser vendor's) and, outside localhost, HTTPS.

/** Raised with a `code`: `unsupported`, `denied`, `no-worker`, or the server's error code. */
export class PushError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "PushError";
    this.code = code;
  }
}

/** Whether this browser has Web Push and notifications at all. */
export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in self && "Notification" in self;
}

/** `granted`, `denied`, `default` (not asked yet), or `unsupported`. */
export function pushPermission() {
  return pushSupported() ? Notification.permission : "unsupported";
}

/** This browser's push subscription for the SW at `scope`, or null. */
export async function pushSubscription({ scope = "/" } = {}) {
  if (!pushSupported()) return null;
  const reg = await navigator.serviceWorker.getRegistration(scope);
  return reg ? reg.pushManager.getSubscription() : null;
}

/**
 * Subscribes this browser to pushes for `topics` (`["rooms/*"]`): asks for permission (so call
 * it from a click), gets the server's key, subscribes the SW's `pushManager` (`userVisibleOnly`:
 * every push shows a notification) and registers the subscription with the server, which ties
 * it to whoever is signed in. Calling it again replaces the topics. Resolves to the
 * `PushSubscription`; rejects with a `PushError`.
 */
export async function subscribePush(
  topics,
  { keyUrl = "/api/push/key", subscriptionsUrl = "/api/push/subscriptions", scope = "/" } = {},
) {
  if (!pushSupported()) throw new PushError("unsupported", "this browser has no Web Push");
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new PushError("denied", "notifications are not allowed");
  const reg = await navigator.serviceWorker.getRegistration(scope);
  if (!reg) throw new PushError("no-worker", "no ServiceWorker is registered");
  await navigator.serviceWorker.ready;
  const { publicKey } = await call(keyUrl, { cache: "no-store" });
  const key = fromBase64Url(publicKey);
  let sub = await reg.pushManager.getSubscription();
  if (sub && !sameKey(sub.options.applicationServerKey, key)) {
    // Made for another server key (the server's key file changed): it can never be used again.
    await sub.unsubscribe();
    sub = null;
  }
  if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  await call(subscriptionsUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ subscription: sub.toJSON(), topics }),
  });
  return sub;
}

/**
 * Ends this browser's subscription: the server forgets it, then the browser. Resolves to
 * whether there was one.
 */
export async function unsubscribePush({ subscriptionsUrl = "/api/push/subscriptions", scope = "/" } = {}) {
  const sub = await pushSubscription({ scope });
  if (!sub) return false;
  try {
    await call(subscriptionsUrl, {
      method: "DELETE",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ endpoint: sub.endpoint }),
    });
  } finally {
    // Even if the server could not be told: a subscription the browser dropped gets a 410 from
    // the push service at the next push, and the server removes it then.
    await sub.unsubscribe();
  }
  return true;
}

/** A JSON request; the body of a 2xx (null when empty), else a PushError from `{error}`. */
async function call(url, init) {
  const res = await fetch(url, { credentials: "same-origin", ...init });
  const text = await res.text();
  const body = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const error = (body && body.error) || {};
    throw new PushError(error.code || `http-${res.status}`, error.message || res.statusText);
  }
  return body;
}

function fromBase64Url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function sameKey(buffer, key) {
  if (!buffer) return false;
  const had = new Uint8Array(buffer);
  return had.length === key.length && had.every((b, i) => b === key[i]);
}

// The signed-in account: who it is, signing in, and the two halves of signing out.
//
// The session is an HttpOnly cookie, so the page never sees it: it learns who is signed in from
// `GET /api/auth/me`. That read needs the server, so the last answer is kept in localStorage as
// a hint: a page opened offline still knows whose outbox entries are whose and shows the name.
// Signing out has a server half (`POST /api/auth/logout` ends the session and clears the
// cookie) and a device half: the ServiceWorker keeps private answers in a cache of its own,
// which only it empties, on a `{type:"sign-out"}` message.

import { ApiError, getJson, postJson } from "./api.js";

const HINT_KEY = "watercooler.account";
/** The ServiceWorker's cache of private answers (sw/src/store.rs, PRIVATE_CACHE). */
const PRIVATE_CACHE = "nudge-private-v1";
/**
 * How long sign-out waits for the SW's `signed-out` before it deletes the private cache itself.
 * A live SW answers within milliseconds; this bounds only a stuck or vanished one.
 */
const SW_SIGN_OUT_MS = 10000;

/** The account this device last knew to be signed in, or null. */
export function accountHint() {
  try {
    return localStorage.getItem(HINT_KEY) || null;
  } catch {
    return null;
  }
}

export function saveAccountHint(name) {
  try {
    if (name) localStorage.setItem(HINT_KEY, name);
    else localStorage.removeItem(HINT_KEY);
  } catch {
    // Storage may be disabled; the hint then lasts for this page only.
  }
}

/**
 * Asks the server who is signed in: the name, or null when nobody is. Throws when the server
 * cannot say (offline), so the caller keeps its hint rather than signing anyone out by mistake.
 */
export async function whoAmI() {
  try {
    const { data } = await getJson("/api/auth/me");
    return typeof data.name === "string" ? data.name : null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

/** `mode` is `login` or `register`; resolves to the account name, throws an ApiError to show. */
export async function signIn(mode, name, password) {
  const path = mode === "register" ? "/api/auth/register" : "/api/auth/login";
  let data;
  try {
    data = await postJson(path, { name, password });
  } catch (err) {
    if (err.code === "network") {
      throw new ApiError("The server cannot be reached: sign in once you are online.");
    }
    throw err;
  }
  return data && typeof data.name === "string" ? data.name : name;
}

/** The server half: ends the session. Throws (and changes nothing) when the server is gone. */
export async function endSession() {
  try {
    await postJson("/api/auth/logout", {});
  } catch (err) {
    if (err.code === "network") {
      throw new ApiError("The server cannot be reached: sign out once you are online.");
    }
    throw err;
  }
}

/**
 * The device half: makes sure no private answer stays on this device. Resolves to `true` once
 * the private cache is gone, `false` when that could not be made sure (then the caller says so).
 *
 * The SW is asked first, because only it can also refuse the private answers of requests still
 * in flight (sw/src/store.rs, `Epoch`); its `signed-out` means the cache is gone. The page does
 * not carry on while the cache may still be there: when no SW answers (there is none, it is being
 * replaced, or it is stuck past SW_SIGN_OUT_MS), the page deletes the cache itself, since Cache
 * Storage is the origin's, not the SW's. A SW that is only slow still deletes it again when the
 * message reaches it. Uses the registration's active worker rather than the controller, so a
 * page the SW does not control yet (first visit) still reaches it.
 */
export async function forgetPrivateResponses() {
  if (await askServiceWorker()) return true;
  if (!("caches" in self)) return true; // no Cache Storage, nothing kept
  try {
    await caches.delete(PRIVATE_CACHE);
    return true;
  } catch (err) {
    console.warn("sign-out: the private cache could not be deleted", err);
    return false;
  }
}

/** Sends `sign-out` to the SW; resolves to whether it confirmed. */
async function askServiceWorker() {
  if (!("serviceWorker" in navigator)) return false;
  const reg = await navigator.serviceWorker.getRegistration("/").catch(() => null);
  const worker = (reg && reg.active) || navigator.serviceWorker.controller;
  if (!worker) return false;
  const channel = new MessageChannel();
  let timer;
  let onState;
  const confirmed = await new Promise((resolve) => {
    channel.port1.onmessage = (e) => resolve(!!e.data && e.data.type === "signed-out");
    // A worker that is replaced meanwhile never answers: no need to wait out the deadline.
    onState = () => worker.state === "redundant" && resolve(false);
    worker.addEventListener("statechange", onState);
    timer = setTimeout(() => resolve(false), SW_SIGN_OUT_MS);
    worker.postMessage({ type: "sign-out" }, [channel.port2]);
  });
  clearTimeout(timer);
  worker.removeEventListener("statechange", onState);
  channel.port1.close();
  if (!confirmed) console.warn("sign-out: the ServiceWorker did not confirm; the page deletes the private cache");
  return confirmed;
}

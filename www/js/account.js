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
/** How long sign-out waits for the SW's `signed-out` before going on without it. */
const SW_SIGN_OUT_MS = 3000;

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
 * The device half: asks the ServiceWorker to forget every private response and waits for its
 * `signed-out`, at most SW_SIGN_OUT_MS (a SW that is being replaced may never answer; the
 * session is over anyway, so private reads can no longer be refreshed into its cache).
 * Resolves to whether the SW confirmed. Uses the registration's active worker rather than the
 * controller, so a page the SW does not control yet (first visit) still reaches it.
 */
export async function forgetPrivateResponses() {
  if (!("serviceWorker" in navigator)) return true;
  const reg = await navigator.serviceWorker.getRegistration("/").catch(() => null);
  const worker = (reg && reg.active) || navigator.serviceWorker.controller;
  if (!worker) return true; // no SW, no private cache
  const channel = new MessageChannel();
  const answered = new Promise((resolve) => {
    channel.port1.onmessage = (e) => resolve(!!e.data && e.data.type === "signed-out");
  });
  const timeout = new Promise((resolve) => setTimeout(() => resolve(false), SW_SIGN_OUT_MS));
  worker.postMessage({ type: "sign-out" }, [channel.port2]);
  const confirmed = await Promise.race([answered, timeout]);
  channel.port1.close();
  if (!confirmed) console.warn("sign-out: the ServiceWorker did not confirm in time");
  return confirmed;
}

// The ServiceWorker's registration and the "new version" hand-over.
//
// A new build is a new SW (its imported scripts carry the wasm and the precache manifest). It
// installs beside the running one and waits: taking over under an open page would mix old page
// code with a new SW. The page offers the update; on accept it posts `skip-waiting` to the
// waiting SW, which activates and claims every tab; each tab that had a controller before then
// reloads on `controllerchange`, so every tab runs the new code together.

/**
 * Registers the SW at `url` (nudge's loader, `/sw.js`, or `/sw.js?routes=/routes.js` for an app
 * with a route table of its own); calls `onPost(event)` for each `postMessage` of the SW,
 * `onWaiting(accept)` whenever a new version waits to take over, and `onControlled()` when a
 * first visit's SW takes control of this tab.
 */
export async function registerServiceWorker({ url, scope = "/", onPost, onWaiting, onControlled }) {
  if (!("serviceWorker" in navigator)) return null;
  const sw = navigator.serviceWorker;
  sw.addEventListener("message", onPost);
  sw.startMessages();

  // The first visit's claim also fires `controllerchange`: only a replacement means reload.
  let controller = sw.controller;
  let reloading = false;
  sw.addEventListener("controllerchange", () => {
    if (controller && !reloading) {
      reloading = true;
      location.reload();
    } else if (!controller) {
      // What this tab read before the claim went past the SW, so nothing of it is stored yet:
      // reading it again now is what makes the page open offline after a first visit.
      onControlled();
    }
    controller = sw.controller;
  });

  let reg;
  try {
    // `updateViaCache: none`: the imported scripts are the version, so never take them from
    // the HTTP cache when checking for an update.
    reg = await sw.register(url, { scope, updateViaCache: "none" });
  } catch (err) {
    console.info("nudge: the page works without its ServiceWorker:", err.message);
    return null;
  }

  const offer = () => {
    // Without a controller there is nothing to replace: that SW takes over by itself.
    if (!reg.waiting || !sw.controller) return;
    const waiting = reg.waiting;
    onWaiting(() => waiting.postMessage({ type: "skip-waiting" }));
  };
  offer();
  reg.addEventListener("updatefound", () => {
    const installing = reg.installing;
    if (!installing) return;
    installing.addEventListener("statechange", () => {
      if (installing.state === "installed") offer();
    });
  });
  return reg;
}

// nudge's ServiceWorker loader. All the logic is in Rust (sw/); this file only brings the wasm
// in and hands every event to it.
//
// Everything here runs synchronously during the first evaluation, as the platform requires for
// listeners, and needs no network: the scripts below are part of this SW's installed scripts,
// so a SW that the browser restarts while offline still starts and routes.
importScripts('/gen/nudge_sw.js', '/gen/nudge_sw_wasm.js', '/gen/precache.js');

// Another app uses this compiled SW unchanged with a route table of its own (sw/README.md):
// `register('/sw.js?routes=/routes.js')` imports that script, which sets self.NUDGE_ROUTES.
// Without it, nudge's own table applies. Only a same-origin path is accepted, so a crafted
// registration URL cannot pull in another site's script. The origin compared is the one the URL
// parser finds, not a guess from the text: it reads `/\host/x.js` as `//host/x.js`.
const routes = new URL(self.location.href).searchParams.get('routes');
if (routes !== null) {
  let resolved = null;
  try {
    resolved = new URL(routes, self.location.href);
  } catch {
    // Not a URL at all: refused below like any other.
  }
  if (routes.startsWith('/') && resolved !== null && resolved.origin === self.location.origin) {
    importScripts(resolved.href);
  } else {
    console.error(`nudge-sw: ?routes= must be a same-origin path, not ${routes}`);
    self.NUDGE_ROUTES = null; // an invalid table: the SW intercepts nothing
  }
}

wasm_bindgen.initSync({ module: self.NUDGE_SW_WASM });
// Reads the route table now, so that a bad one is reported when the SW starts.
wasm_bindgen.on_start();

self.addEventListener('install', (event) => wasm_bindgen.on_install(event));
self.addEventListener('activate', (event) => wasm_bindgen.on_activate(event));
// Rust decides synchronously; when it does not call respondWith, the browser fetches as usual.
self.addEventListener('fetch', (event) => wasm_bindgen.on_fetch(event));
self.addEventListener('message', (event) => wasm_bindgen.on_message(event));
// Background Sync: the network is back, the outbox's writes go up (even with no tab open).
self.addEventListener('sync', (event) => wasm_bindgen.on_sync(event));
self.addEventListener('push', (event) => wasm_bindgen.on_push(event));
self.addEventListener('notificationclick', (event) => wasm_bindgen.on_notification_click(event));

// nudge's ServiceWorker loader. All the logic is in Rust (sw/); this file only brings the wasm
// in and hands every event to it.
//
// Everything here runs synchronously during the first evaluation, as the platform requires for
// listeners, and needs no network: the three scripts below are part of this SW's installed
// scripts, so a SW that the browser restarts while offline still starts and routes.
importScripts('/gen/nudge_sw.js', '/gen/nudge_sw_wasm.js', '/gen/precache.js');

wasm_bindgen.initSync({ module: self.NUDGE_SW_WASM });

self.addEventListener('install', (event) => wasm_bindgen.on_install(event));
self.addEventListener('activate', (event) => wasm_bindgen.on_activate(event));
// Rust decides synchronously; when it does not call respondWith, the browser fetches as usual.
self.addEventListener('fetch', (event) => wasm_bindgen.on_fetch(event));
self.addEventListener('message', (event) => wasm_bindgen.on_message(event));

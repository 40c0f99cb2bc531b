// Cold start, measured in the page: from register() until the SW, now controlling the page,
// has answered one fetch (of a precached file). Arguments: script URL, probe URL.
const [script, probe, done] = arguments;
(async () => {
  const start = performance.now();
  await navigator.serviceWorker.register(script);
  if (!navigator.serviceWorker.controller) {
    await new Promise((resolve) =>
      navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
  }
  const response = await fetch(probe);
  await response.arrayBuffer();
  const ms = performance.now() - start;
  // A response the SW made has a workerStart; one the network made without a SW has none.
  const entry = performance.getEntriesByName(new URL(probe, location.href).href).pop();
  if (!response.ok || !entry || !(entry.workerStart > 0)) {
    done({ error: `not served by the SW (status ${response.status})` });
  } else {
    done({ ms, isolated: self.crossOriginIsolated });
  }
})().catch((error) => done({ error: String(error) }));

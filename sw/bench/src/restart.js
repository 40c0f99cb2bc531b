// A restart, measured in the page: the benchmark has just stopped every ServiceWorker (DevTools
// ServiceWorker.stopAllWorkers, as the browser stops idle ones); this times the next fetch of a
// precached file, which has to start the SW again from its installed scripts. Arguments: probe.
const [probe, done] = arguments;
(async () => {
  performance.clearResourceTimings();
  const start = performance.now();
  const response = await fetch(probe);
  await response.arrayBuffer();
  const ms = performance.now() - start;
  const entry = performance.getEntriesByName(new URL(probe, location.href).href).pop();
  if (!response.ok || !entry || !(entry.workerStart > 0)) {
    done({ error: `not served by the SW (status ${response.status})` });
  } else {
    done({ ms });
  }
})().catch((error) => done({ error: String(error) }));

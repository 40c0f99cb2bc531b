// Cache hits, measured in the page: a warm-up, then sequential fetches of one precached URL,
// each timed until its body is read. Arguments: probe URL, number of hits.
const [probe, hits, done] = arguments;
(async () => {
  for (let i = 0; i < 50; i++) await (await fetch(probe)).arrayBuffer();
  const times = new Array(hits);
  for (let i = 0; i < hits; i++) {
    const start = performance.now();
    const response = await fetch(probe);
    await response.arrayBuffer();
    times[i] = performance.now() - start;
  }
  done({ times });
})().catch((error) => done({ error: String(error) }));

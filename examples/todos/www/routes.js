// The ServiceWorker's route table for this app (schema: sw/README.md). The compiled SW imports
// this script because the page registers `/sw.js?routes=/routes.js`; the shell (every file the
// server lists in /gen/precache.js) is precached and answers offline navigations.
self.NUDGE_ROUTES = {
  routes: [
    { match: { exact: "/api/events" }, strategy: { name: "pass" } },
    {
      name: "todos",
      match: { exact: "/api/todos" },
      strategy: { name: "network-first", cache: "todos-api-v1", networkTimeoutMs: 3000 },
    },
    // Writes made offline wait in the SW's outbox and go up once, even with no tab open.
    { name: "add", method: "POST", match: { exact: "/api/todos" }, strategy: { name: "outbox" } },
    { name: "edit", method: "PUT", match: { pattern: "/api/todos/:id" }, strategy: { name: "outbox" } },
  ],
  navigationFallback: "/",
};

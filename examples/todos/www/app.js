// A shared todo list on nudge's browser modules. The page reads /api/todos; nudge says when to
// read it again (from the SW's copy, refreshed once for the whole browser); every write goes
// through the outbox, so one made offline waits in IndexedDB and goes up once when the server
// is back (its Idempotency-Key makes a retry harmless).
import { Nudge } from "/nudge/nudge.js";
import { Outbox } from "/nudge/outbox.js";

const LIST = "/api/todos";
const $ = (selector) => document.querySelector(selector);
let shown = null; // the last list read: {todos: [{id, text, done}], last_event_id}

const nudge = new Nudge({
  topics: ["todos"],
  lastEventId: () => firstRead.then(() => shown?.last_event_id ?? null),
  serviceWorker: "/sw.js?routes=/routes.js",
  name: "todos",
});
const outbox = new Outbox({ name: "todos" });

/** Reads the list (from the SW's copy when `cached`) and shows it. */
async function load({ cached = false, etag = null } = {}) {
  try {
    const res = await nudge.fetch(LIST, { cached, etag });
    if (res.ok) {
      shown = await res.json();
      $("#todos").dataset.source = res.source;
    }
  } catch {
    // No server and no stored copy: keep what is shown.
  }
  await render();
}

/** The list as read, with the outbox's writes on top, marked pending. */
async function render() {
  const waiting = await outbox.entries();
  const edits = new Map(waiting.filter((e) => e.method === "PUT").map((e) => [e.url, e.body]));
  const todos = (shown?.todos ?? []).map((todo) => {
    const edit = edits.get(`${LIST}/${todo.id}`);
    return { ...todo, ...edit, pending: !!edit };
  });
  for (const e of waiting) if (e.method === "POST") todos.push({ ...e.body, done: false, pending: true });
  $("#todos").replaceChildren(...todos.map(row));
}

function row(todo) {
  const li = document.createElement("li");
  li.classList.toggle("pending", todo.pending);
  if (todo.id) li.dataset.id = todo.id;
  const done = document.createElement("input");
  done.type = "checkbox";
  done.checked = todo.done;
  done.disabled = !todo.id; // not on the server yet
  done.setAttribute("aria-label", `done: ${todo.text}`);
  done.addEventListener("change", () => write(`${LIST}/${todo.id}`, "PUT", { done: done.checked }));
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = todo.text;
  li.append(done, text);
  return li;
}

async function write(url, method, body) {
  $("#error").textContent = "";
  await outbox.send({ url, method, body });
  await render();
}

$("#add").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("#text").value.trim();
  $("#text").value = "";
  if (text) write(LIST, "POST", { text });
});

nudge.addEventListener("changed", (e) => load(e.detail));
nudge.addEventListener("reset", () => load());
nudge.addEventListener("controlled", () => load()); // so the new SW keeps a copy
nudge.addEventListener("open", () => outbox.flush());
nudge.addEventListener("state", ({ detail }) => {
  $("#status").dataset.state = detail.state;
  $("#status").textContent = detail.state;
});
outbox.addEventListener("sent", () => load());
outbox.addEventListener("change", () => render());
outbox.addEventListener("rejected", ({ detail }) => {
  $("#error").textContent = detail.error.message;
  render();
});

nudge.watch([LIST]);
const firstRead = load();
nudge.start();

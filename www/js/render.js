// DOM output. User data only ever goes in through textContent, never innerHTML.

const $ = (id) => document.getElementById(id);

const STATUS_TEXT = {
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

/** Shows the connection state; tests and CSS read `data-state`. */
export function renderStatus(state) {
  const el = $("status");
  if (el.dataset.state === state) return;
  el.dataset.state = state;
  $("status-text").textContent = STATUS_TEXT[state] || state;
  $("offline-note").hidden = state !== "offline";
}

export function renderRoomName(room) {
  $("room-name").textContent = `#${room}`;
  document.title = `#${room} · Watercooler`;
}

/**
 * Brings the list in line with `messages` (oldest first) while touching only what changed:
 * rows already shown stay in place, so the log region announces just the new ones and the
 * reader's scroll position is not thrown about.
 */
export function renderMessages(messages, me) {
  const list = $("messages");
  const log = list.parentElement;
  // Only arrivals after the first paint slide in; a page (re)load just appears.
  const animate = list.children.length > 0;
  const wanted = new Set(messages.map((m) => String(m.id)));
  for (const li of [...list.children]) {
    if (!wanted.has(li.dataset.id)) li.remove();
  }
  let cursor = list.firstElementChild;
  for (const m of messages) {
    const id = String(m.id);
    if (cursor && cursor.dataset.id === id) {
      cursor.classList.toggle("mine", !!me && m.author === me);
      cursor = cursor.nextElementSibling;
      continue;
    }
    const existing = list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
    const li = existing || messageItem(m);
    if (!existing && animate) li.classList.add("new");
    li.classList.toggle("mine", !!me && m.author === me);
    list.insertBefore(li, cursor);
  }
  $("empty").hidden = messages.length > 0;
  if (following) log.scrollTop = log.scrollHeight;
}

function messageItem(m) {
  const li = document.createElement("li");
  li.className = "message";
  li.dataset.id = String(m.id);

  const meta = document.createElement("div");
  meta.className = "meta";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = m.author;
  meta.append(author);

  const when = parseTime(m.created_at);
  if (when) {
    const time = document.createElement("time");
    time.dateTime = when.toISOString();
    time.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    time.title = when.toLocaleString();
    meta.append(time);
  }

  const text = document.createElement("p");
  text.className = "text";
  text.textContent = m.text;

  li.append(meta, text);
  return li;
}

/** Accepts RFC 3339 strings and Unix seconds or milliseconds; the wire leaves the unit open. */
function parseTime(value) {
  if (value === undefined || value === null) return null;
  const d =
    typeof value === "number" ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** Whether the log follows new messages: only while the reader is at its end, not reading back. */
let following = true;

/**
 * Keeps the log pinned to its end while the reader is there, also when the log itself changes
 * size (a presence line or the offline note appearing above it, a phone keyboard opening).
 */
export function followLog() {
  const log = $("messages").parentElement;
  log.addEventListener(
    "scroll",
    () => {
      following = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    },
    { passive: true },
  );
  new ResizeObserver(() => {
    if (following) log.scrollTop = log.scrollHeight;
  }).observe(log);
}

export function renderRooms(rooms, current) {
  const ul = $("rooms");
  const names = rooms.map((r) => r.name);
  if (!names.includes(current)) names.push(current);
  names.sort();
  ul.replaceChildren(
    ...names.map((name) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = `#${name}`;
      a.textContent = `#${name}`;
      if (name === current) a.setAttribute("aria-current", "page");
      li.append(a);
      return li;
    }),
  );
}

export function renderPresence(names) {
  const el = $("presence");
  el.textContent = names.length ? `Here: ${names.join(", ")}` : "";
}

export function renderComposeError(message) {
  $("compose-error").textContent = message || "";
}

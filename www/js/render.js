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
 * Brings the list in line with `messages` (oldest first) and then `pending` (outbox entries,
 * in the order typed) while touching only what changed: rows already shown stay in place, so
 * the log region announces just the new ones and the reader's scroll position is not thrown
 * about. `keepScroll` holds the view still while older messages are added above it.
 */
export function renderMessages(messages, pending, me, { keepScroll = false } = {}) {
  const list = $("messages");
  const log = list.parentElement;
  const fromBottom = log.scrollHeight - log.scrollTop;
  // Only arrivals after the first paint slide in; a page (re)load just appears.
  const animate = list.children.length > 0 && !keepScroll;
  const rows = [
    ...messages.map((m) => ({ id: String(m.id), m, pending: false })),
    ...pending.map((e) => ({ id: `pending-${e.key}`, m: e, pending: true })),
  ];
  const wanted = new Set(rows.map((r) => r.id));
  for (const li of [...list.children]) {
    if (!wanted.has(li.dataset.id)) li.remove();
  }
  let cursor = list.firstElementChild;
  for (const { id, m, pending: isPending } of rows) {
    let li = cursor && cursor.dataset.id === id ? cursor : null;
    if (li) {
      cursor = cursor.nextElementSibling;
    } else {
      li = list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
      if (!li) {
        li = isPending ? pendingItem(m, id) : messageItem(m);
        if (animate) li.classList.add("new");
      }
      list.insertBefore(li, cursor);
    }
    li.classList.toggle("mine", !!me && m.author === me);
  }
  $("empty").hidden = rows.length > 0;
  if (keepScroll) log.scrollTop = log.scrollHeight - fromBottom;
  else if (following) log.scrollTop = log.scrollHeight;
}

/** A message typed here that the server has not confirmed yet. */
function pendingItem(entry, id) {
  const li = messageItem({ ...entry, id, created_at: null });
  li.classList.add("pending");
  const note = document.createElement("span");
  note.className = "pending-note";
  note.textContent = "Not sent yet";
  li.querySelector(".meta").append(note);
  return li;
}

/** Scrolls to the newest message and follows from there (after the reader sends one). */
export function followNewest() {
  const log = $("messages").parentElement;
  following = true;
  log.scrollTop = log.scrollHeight;
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
export function followLog(onNearTop) {
  const log = $("messages").parentElement;
  log.addEventListener(
    "scroll",
    () => {
      following = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
      if (log.scrollTop < 80 && !following) onNearTop();
    },
    { passive: true },
  );
  new ResizeObserver(() => {
    if (following) log.scrollTop = log.scrollHeight;
  }).observe(log);
}

/**
 * The room list: `rooms` as the server lists them (`{name, private}`), plus the current room if
 * the list lacks it. Private rooms carry `data-private` and a visible "private" mark.
 */
export function renderRooms(rooms, current) {
  const ul = $("rooms");
  const byName = new Map(rooms.map((r) => [r.name, !!r.private]));
  if (!byName.has(current)) byName.set(current, false);
  const names = [...byName.keys()].sort();
  // Rebuilding the list must not throw a keyboard user's focus back to the page's start.
  const focused = document.activeElement && document.activeElement.closest("#rooms a");
  const focusedHref = focused ? focused.getAttribute("href") : null;
  ul.replaceChildren(
    ...names.map((name) => {
      const li = document.createElement("li");
      li.dataset.room = name;
      const a = document.createElement("a");
      a.href = `#${name}`;
      const label = document.createElement("span");
      label.className = "room-label";
      label.textContent = `#${name}`;
      a.title = `#${name}`; // the label may be cut short
      a.append(label);
      if (name === current) a.setAttribute("aria-current", "page");
      if (byName.get(name)) {
        li.dataset.private = "true";
        const mark = document.createElement("span");
        mark.className = "private-mark";
        mark.textContent = "private";
        a.append(" ", mark);
      }
      li.append(a);
      return li;
    }),
  );
  if (focusedHref) {
    const again = [...ul.querySelectorAll("a")].find((a) => a.getAttribute("href") === focusedHref);
    if (again) again.focus();
  }
}

/** Why the room cannot be shown (not signed in, not a member), or "" when it can. */
export function renderDenied(message) {
  const el = $("room-denied");
  el.textContent = message || "";
  el.hidden = !message;
  if (message) $("empty").hidden = true;
}

/** A one-off word about what just happened (e.g. access to a room was withdrawn). */
export function renderNotice(message) {
  $("notice").textContent = message || "";
}

export function renderPresence(names) {
  const el = $("presence");
  el.textContent = names.length ? `Here: ${names.join(", ")}` : "";
}

/** The "older messages" button: shown while the server may hold more, busy while loading. */
export function renderOlder({ more, loading, failed }) {
  const button = $("older");
  button.hidden = !more;
  button.disabled = loading;
  button.textContent = loading
    ? "Loading older messages…"
    : failed
      ? "Could not load older messages. Try again"
      : "Show older messages";
}

/** Shows the "new version" banner; `accept` is called once, when the reader takes it. */
export function renderUpdate(accept) {
  const banner = $("update");
  const button = $("update-accept");
  banner.hidden = false;
  button.onclick = () => {
    button.disabled = true;
    button.textContent = "Updating…";
    accept();
  };
}

export function renderRoomError(message) {
  $("new-room-error").textContent = message || "";
}

/** Marks whether this tab holds the browser's one event stream, for tests and debugging. */
export function renderRole(leader) {
  $("status").dataset.tab = leader ? "leader" : "follower";
}

export function renderComposeError(message) {
  $("compose-error").textContent = message || "";
}

// The compose form and the display name. Every message goes up through nudge's outbox, with
// its idempotency key chosen when it is typed, so nothing typed offline is lost or doubled.

import { messagesUrl } from "./api.js";
import { renderComposeError } from "./render.js";

const NAME_KEY = "watercooler.author";

export class Compose {
  /**
   * `room()`: where a message goes; `account()`: who is signed in (null: nobody);
   * `onQueued(entry)`: a message waits in the outbox; `onRenamed()`: the display name changed.
   */
  constructor({ outbox, room, account, onQueued, onRenamed }) {
    this.outbox = outbox;
    this.room = room;
    this.account = account;
    this.onQueued = onQueued;
    this.onRenamed = onRenamed;
    this.form = document.getElementById("compose");
    this.me = loadName();
    this.form.addEventListener("submit", (e) => this.onSubmit(e));
  }

  /** Puts the name in the form and the cursor where typing starts. */
  start() {
    if (!this.me && this.account()) this.saveName(this.account());
    this.form.elements.author.value = this.me;
    (this.me ? this.form.elements.text : this.form.elements.author).focus({ preventScroll: true });
  }

  /** Signed in: the display name is the account name (the server writes under no other). */
  useAccountName(name) {
    this.saveName(name);
    this.form.elements.author.value = name;
  }

  async onSubmit(event) {
    event.preventDefault();
    const authorInput = this.form.elements.author;
    const textInput = this.form.elements.text;
    const author = authorInput.value.trim();
    const text = textInput.value.trim();
    if (!author) {
      renderComposeError("Enter your name first.");
      authorInput.focus();
      return;
    }
    if (!text) {
      textInput.focus();
      return;
    }
    // Signed in, the server takes the account's name as the author and refuses another one.
    const account = this.account();
    if (account && author !== account) {
      authorInput.value = account;
      renderComposeError(`Signed in as ${account}, you write under that name.`);
      return;
    }
    // Cleared before anything waits, so a second submit in the same moment finds nothing to send.
    textInput.value = "";
    renderComposeError("");
    if (author !== this.me) {
      this.saveName(author);
      this.onRenamed();
    }
    const room = this.room();
    this.onQueued(await this.outbox.send({ url: messagesUrl(room), body: { author, text }, room }));
  }

  saveName(name) {
    this.me = name;
    try {
      localStorage.setItem(NAME_KEY, name);
    } catch {
      // Storage may be disabled; the name then lasts for this page only.
    }
  }
}

function loadName() {
  try {
    return localStorage.getItem(NAME_KEY) || "";
  } catch {
    return "";
  }
}

/**
 * An entry the outbox of an earlier version stored (`{room, author, text, account}`), or one
 * of the ServiceWorker's outbox, which knows the URL but not the room.
 */
export function upgradeEntry(e) {
  if (e.url && e.room) return e;
  if (e.url) {
    const match = /\/api\/rooms\/([^/]+)\/messages$/.exec(new URL(e.url, location.href).pathname);
    return { ...e, room: match ? match[1] : null };
  }
  const { author, text, account, ...rest } = e;
  return { ...rest, method: "POST", url: messagesUrl(e.room), body: { author, text }, principal: account ?? null };
}

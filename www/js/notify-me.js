// "Notify me" for the room shown: Web Push for the rooms this browser chose, one by one. The
// ServiceWorker then refreshes the room and says "#room, New messages: n" even with no
// Watercooler tab open. The browser holds one push subscription; its topics are the chosen
// rooms (kept in localStorage), and choosing none ends it.
//
// Permission is asked only on a click. The button says what holds for this room: off, on,
// blocked by the browser, or failed (the server's message); it is hidden where the browser has
// no Web Push. A signed-out visitor may choose public rooms only (the server refuses a private
// room's topic to anyone who may not read it), and signing out drops the private rooms chosen.

import { PushError, pushPermission, pushSubscription, pushSupported, subscribePush, unsubscribePush } from "../nudge/push.js";

const CHOSEN = "watercooler-notify-rooms";

export class NotifyMe {
  /** `room()`: the room shown; `isPrivate(name)`: whether a room is private, as last listed. */
  constructor({ room, isPrivate }) {
    this.room = room;
    this.isPrivate = isPrivate;
    this.button = document.getElementById("notify");
    this.note = document.getElementById("notify-note");
    this.subscribed = false;
    if (!pushSupported()) return;
    this.button.hidden = false;
    this.button.addEventListener("click", () => this.toggle());
    pushSubscription()
      .then((sub) => {
        this.subscribed = !!sub;
        if (!sub) this.save(new Set()); // the browser forgot it: so do we
        this.render();
      })
      .catch(() => this.render());
  }

  /** The rooms chosen in this browser. */
  chosen() {
    try {
      return new Set(JSON.parse(localStorage.getItem(CHOSEN) || "[]"));
    } catch {
      return new Set();
    }
  }

  save(rooms) {
    localStorage.setItem(CHOSEN, JSON.stringify([...rooms]));
  }

  /** Another room is shown: the button speaks of it. */
  enter() {
    if (pushSupported()) this.render();
  }

  async toggle() {
    const rooms = this.chosen();
    const name = this.room();
    if (rooms.has(name)) rooms.delete(name);
    else rooms.add(name);
    this.button.disabled = true;
    try {
      await this.subscribe(rooms);
      this.render();
    } catch (err) {
      this.render(err instanceof PushError && err.code === "denied" ? "" : err.message);
    }
  }

  /** Makes the subscription carry `rooms`, or ends it when there are none. */
  async subscribe(rooms) {
    if (rooms.size === 0) {
      await unsubscribePush();
      this.subscribed = false;
    } else {
      await subscribePush([...rooms].map((room) => `rooms/${room}`));
      this.subscribed = true;
    }
    this.save(rooms);
  }

  /**
   * The account changed: the server ties a subscription to whoever made it, so make it again
   * under the new session; after a sign-out, without the private rooms chosen before.
   */
  async accountChanged({ signedIn }) {
    if (!this.subscribed) return;
    const rooms = this.chosen();
    if (!signedIn) for (const room of [...rooms]) if (this.isPrivate(room)) rooms.delete(room);
    try {
      await this.subscribe(rooms);
      this.render();
    } catch (err) {
      this.render(err.message);
    }
  }

  render(error = "") {
    const room = this.room();
    const on = this.subscribed && this.chosen().has(room);
    const blocked = pushPermission() === "denied";
    this.button.disabled = blocked && !on;
    this.button.textContent = on ? `Notifications on for #${room}` : `Notify me about #${room}`;
    this.button.setAttribute("aria-pressed", String(on));
    this.button.dataset.state = on ? "on" : blocked ? "blocked" : "off";
    this.note.textContent = error || (blocked && !on ? "Notifications are blocked in this browser's settings." : "");
  }
}

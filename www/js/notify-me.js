// "Notify me": Web Push for every room this person may read (`rooms/*`; the server pushes only
// rooms the subscription's principal may read at the time). The ServiceWorker then refreshes the
// room and says "#room, New messages: n" even with no Watercooler tab open.
//
// Permission is asked only on a click. The button says what holds: off, on, blocked by the
// browser, or failed (the server's message); it is hidden where the browser has no Web Push.

import { PushError, pushPermission, pushSubscription, pushSupported, subscribePush, unsubscribePush } from "../nudge/push.js";

const TOPICS = ["rooms/*"];

export class NotifyMe {
  constructor() {
    this.button = document.getElementById("notify");
    this.note = document.getElementById("notify-note");
    this.on = false;
    if (!pushSupported()) return;
    this.button.hidden = false;
    this.button.addEventListener("click", () => this.toggle());
    pushSubscription()
      .then((sub) => this.render(!!sub))
      .catch(() => this.render(false));
  }

  async toggle() {
    this.button.disabled = true;
    try {
      if (this.on) {
        await unsubscribePush();
        this.render(false);
      } else {
        await subscribePush(TOPICS);
        this.render(true);
      }
    } catch (err) {
      this.render(this.on, err instanceof PushError && err.code === "denied" ? "" : err.message);
    }
  }

  /**
   * The account changed: the server ties a subscription to whoever made it, so make it again
   * under the new session (after a sign-out, it then brings public rooms only).
   */
  async accountChanged() {
    if (!this.on) return;
    try {
      await subscribePush(TOPICS);
    } catch (err) {
      this.render(this.on, err.message);
    }
  }

  render(on, error = "") {
    this.on = on;
    const blocked = pushPermission() === "denied";
    this.button.disabled = blocked && !on;
    this.button.textContent = on ? "Notifications on" : "Notify me";
    this.button.setAttribute("aria-pressed", String(on));
    this.button.dataset.state = on ? "on" : blocked ? "blocked" : "off";
    this.note.textContent = error || (blocked && !on ? "Notifications are blocked in this browser's settings." : "");
  }
}

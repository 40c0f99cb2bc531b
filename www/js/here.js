// Who is in the room: ephemeral, never cached, so always read from the network and announced
// again every beat while the stream is live.

import { getJson, postJson, presenceUrl } from "./api.js";
import { renderPresence } from "./render.js";

const PRESENCE_EVERY_MS = 15000;

export class Presence {
  /** `room()`: the room shown; `me()`: the display name; `live()`: whether the stream is up. */
  constructor({ room, me, live }) {
    this.room = room;
    this.me = me;
    this.live = live;
    setInterval(() => {
      this.announce();
      if (this.live()) this.load();
    }, PRESENCE_EVERY_MS);
  }

  /** Another room is shown: nobody is known to be there yet. */
  enter() {
    renderPresence([]);
    this.load();
    this.announce();
  }

  async load() {
    const room = this.room();
    try {
      const { data } = await getJson(presenceUrl(room));
      if (room === this.room()) renderPresence(Array.isArray(data.here) ? data.here : []);
    } catch {
      if (room === this.room()) renderPresence([]); // ephemeral: nothing stored to fall back on
    }
  }

  async announce() {
    if (!this.me() || !this.live()) return;
    try {
      await postJson(presenceUrl(this.room()), { name: this.me() });
    } catch {
      // Ephemeral and best effort: the next beat tries again.
    }
  }
}

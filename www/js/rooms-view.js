// The room list (which rooms exist and which are private) and the form that creates a room.

import { ApiError, ROOMS_URL, ROOM_RE, createRoom, getJson } from "./api.js";
import { renderRoomError, renderRooms } from "./render.js";

export class RoomList {
  /** `current()`: the room shown; `onListed(fresh)`: the list was shown again (`fresh`: read). */
  constructor({ current, onListed }) {
    this.current = current;
    this.onListed = onListed;
    this.rooms = new Map(); // room name -> private?, from the last room list read
    document.getElementById("new-room").addEventListener("submit", (e) => this.onCreate(e));
  }

  get url() {
    return ROOMS_URL;
  }

  has(room) {
    return this.rooms.has(room);
  }

  isPrivate(room) {
    return !!this.rooms.get(room);
  }

  /** Reads the list (`cached`: from the SW's copy, which it just refreshed). */
  async load({ cached = false } = {}) {
    let fresh = false;
    try {
      const { data } = await getJson(ROOMS_URL, { fromCache: cached });
      const rooms = Array.isArray(data.rooms) ? data.rooms : [];
      this.rooms = new Map(rooms.map((r) => [r.name, !!r.private]));
      fresh = true;
    } catch {
      if (cached) return this.load();
      // Unreachable: keep showing the rooms we knew.
    }
    this.render();
    this.onListed(fresh);
  }

  render() {
    renderRooms(
      [...this.rooms].map(([name, p]) => ({ name, private: p })),
      this.current(),
    );
  }

  async onCreate(event) {
    event.preventDefault();
    const input = event.currentTarget.elements.room;
    const name = input.value.trim().toLowerCase();
    if (!ROOM_RE.test(name)) {
      renderRoomError("Use lowercase letters, digits and dashes (up to 64), starting with a letter or digit.");
      input.focus();
      return;
    }
    const privateBox = event.currentTarget.elements.private;
    try {
      const room = await createRoom(name, { isPrivate: privateBox.checked });
      this.rooms.set(name, !!(room && room.private));
    } catch (err) {
      renderRoomError(err instanceof ApiError ? err.message : String(err));
      return;
    }
    renderRoomError("");
    input.value = "";
    privateBox.checked = false;
    location.hash = name; // the hash is the route; the document stays `/`
    document.getElementById("text").focus();
  }
}

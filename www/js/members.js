// The members part of a private room: add or remove a member by name. The server offers no list
// of a room's members to read, so the list holds the names added from this page.

import { setMember } from "./api.js";
import { renderMemberError, renderMembers } from "./account-view.js";

export class Members {
  /** `room()`: the room shown; `shown()`: whether the part is shown (a private room, signed in). */
  constructor({ room, shown }) {
    this.room = room;
    this.shown = shown;
    this.added = new Map(); // room -> names added as members from this page
    document.getElementById("add-member").addEventListener("submit", (e) => this.onAdd(e));
  }

  render() {
    renderMembers({
      shown: this.shown(),
      added: this.added.get(this.room()) || [],
      onRemove: (name) => this.change(name, false),
    });
  }

  /** Another room is shown: its own errors only. */
  enter() {
    renderMemberError("");
    this.render();
  }

  async onAdd(event) {
    event.preventDefault();
    const input = event.currentTarget.elements.member;
    const name = input.value.trim();
    if (!name) {
      input.focus();
      return;
    }
    if (await this.change(name, true)) input.value = "";
  }

  /** Adds or removes `name`; resolves to whether the server agreed. */
  async change(name, member) {
    const room = this.room();
    try {
      await setMember(room, name, member);
    } catch (err) {
      renderMemberError(err.message);
      return false;
    }
    const names = (this.added.get(room) || []).filter((n) => n !== name);
    this.added.set(room, member ? [...names, name] : names);
    if (room === this.room()) {
      renderMemberError("");
      this.render();
    }
    return true;
  }
}

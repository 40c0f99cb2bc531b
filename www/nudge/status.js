// The connection state a page shows: `live`, `reconnecting` or `offline`.
//
// Judged from two signs, because navigator.onLine stays true when only the server is gone: the
// stream (the leader's own, or as the leader reports it) and this tab's reads (an answer the SW
// marks `X-Nudge-Cache: offline`, or no answer at all, means offline).

export class Status {
  constructor(onChange) {
    this.onChange = onChange;
    this.stream = "reconnecting";
    this.offlineSign = false;
    this.state = null;
    addEventListener("online", () => this.update());
    addEventListener("offline", () => this.update());
  }

  /** `live`, `reconnecting`, or (as a follower hears it from the leader) `offline`. */
  setStream(stream) {
    this.stream = stream;
    // A live stream proves the server is there, whatever an older read said.
    if (stream === "live") this.offlineSign = false;
    this.update();
  }

  /** Records what the latest read said about the server: `true` = it was not reached. */
  sawRead(offline) {
    this.offlineSign = offline;
    this.update();
  }

  update() {
    let state;
    if (this.stream === "live" && navigator.onLine) state = "live";
    else if (this.offlineSign || this.stream === "offline" || !navigator.onLine) state = "offline";
    else state = "reconnecting";
    if (state !== this.state) {
      this.state = state;
      this.onChange(state);
    }
  }
}

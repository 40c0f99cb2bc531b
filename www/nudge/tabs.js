// The tabs of one browser elect one leader, which alone holds the event stream.
//
// The election is a Web Lock: the leader holds it for as long as it lives, and the browser hands
// it to a waiting tab the moment the leader closes, reloads or crashes. The BroadcastChannel
// carries the election's bookkeeping (the last event id seen, so a new leader resumes exactly
// where the old one stopped; the stream's state; which URLs each tab shows) and, for tabs no
// ServiceWorker controls yet, the nudges themselves. Everything else goes the single path:
// leader → SW → `updated` to every tab.

export class Tabs {
  /**
   * `onPost(msg)` receives what other tabs post (a tab never hears its own posts);
   * `lock` and `channel` name the Web Lock and the BroadcastChannel, so two apps on one origin
   * keep apart.
   */
  constructor(onPost, { lock = "nudge-leader", channel = "nudge" } = {}) {
    this.id = crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2);
    this.isLeader = false;
    this.lock = lock;
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(channel) : null;
    if (this.channel) {
      this.channel.onmessage = (e) => {
        if (e.data && typeof e.data.type === "string") onPost(e.data);
      };
    }
  }

  /** Calls `onLead()` once this tab leads; the lock is then held until the tab goes away. */
  elect(onLead) {
    const lead = () => {
      this.isLeader = true;
      onLead();
    };
    if (!navigator.locks) {
      // No Web Locks: each tab must hold a stream of its own to stay live.
      lead();
      return;
    }
    navigator.locks
      .request(this.lock, () => {
        lead();
        return new Promise(() => {}); // released by the browser when this document goes
      })
      .catch((err) => console.warn("nudge: leader election failed:", err));
  }

  /** Posts `msg` to every other tab of this browser, stamped with this tab's id. */
  post(msg) {
    if (this.channel) this.channel.postMessage({ ...msg, from: this.id });
  }
}

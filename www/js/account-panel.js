// The account area: who is signed in, signing in and out here, and hearing that another tab
// did (the session cookie is shared, so this tab is signed in or out too).

import {
  accountHint,
  endSession,
  forgetPrivateResponses,
  saveAccountHint,
  signIn,
  whoAmI,
} from "./account.js";
import { confirmSignOut, renderAccount, renderAccountBusy, renderAccountError } from "./account-view.js";

export class AccountPanel {
  /**
   * `outbox`: held while a sign-out decides; `onChanged(name, { signedIn })`: the account
   * changed (here or in another tab), after it is shown.
   */
  constructor({ outbox, onChanged }) {
    this.outbox = outbox;
    this.onChanged = onChanged;
    this.name = accountHint(); // who is signed in, as far as this page knows (null: nobody)
    this.signingOut = false;
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("watercooler-account") : null;
    if (this.channel) {
      this.channel.onmessage = ({ data }) => {
        if (data && data.type === "account" && (data.name ?? null) !== this.name) this.set(data.name ?? null);
      };
    }
    document.getElementById("signin").addEventListener("submit", (e) => this.onSignIn(e));
    document.getElementById("signout").addEventListener("click", () => this.onSignOut());
    renderAccount(this.name);
  }

  /** Shows `name` as signed in (null: nobody) and tells the page; `tell`: and the other tabs. */
  set(name, { tell = false } = {}) {
    const signedIn = !!name && name !== this.name;
    this.name = name || null;
    saveAccountHint(this.name);
    renderAccount(this.name);
    renderAccountError("");
    if (tell && this.channel) this.channel.postMessage({ type: "account", name: this.name });
    this.onChanged(this.name, { signedIn });
  }

  /** Confirms the hint with the server; offline, the hint stands. */
  async check() {
    let name;
    try {
      name = await whoAmI();
    } catch {
      return;
    }
    if (name === this.name) return;
    // The session ended without a sign-out here (expired, or ended elsewhere): what the SW kept
    // for it is not for whoever uses this device next.
    if (!name) await forgetPrivateResponses();
    this.set(name);
  }

  async onSignIn(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const mode = event.submitter && event.submitter.value === "register" ? "register" : "login";
    const name = form.elements.name.value.trim();
    const password = form.elements.password.value;
    if (!name || !password) {
      renderAccountError("Enter your account name and password.");
      return;
    }
    renderAccountBusy(true);
    renderAccountError("");
    try {
      const account = await signIn(mode, name, password);
      form.reset();
      // Whatever the SW kept from an earlier session is not this account's to see offline.
      await forgetPrivateResponses();
      this.set(account, { tell: true });
    } catch (err) {
      renderAccountError(err.message);
    } finally {
      renderAccountBusy(false);
    }
  }

  /**
   * Signs out: asks first when this account's messages wait in the outbox; then ends the
   * session at the server, has the SW forget private answers, and tells the other tabs. The
   * outbox is held throughout: the dialog's count must stay true while the reader decides, and
   * a send racing the logout would go up under a session that ends halfway.
   */
  async onSignOut() {
    if (this.signingOut) return;
    this.signingOut = true;
    this.outbox.hold();
    renderAccountError("");
    try {
      const unsent = await this.outbox.entries().catch(() => []);
      if (unsent.length && !(await confirmSignOut(unsent.length))) return;
      renderAccountBusy(true);
      await endSession();
      // Resolves once the private answers are gone (or it is known they could not be removed).
      const forgotten = await forgetPrivateResponses();
      this.set(null, { tell: true });
      if (!forgotten) {
        renderAccountError(
          "Signed out, but this browser's copies of private rooms could not be removed: clear this site's data in the browser's settings.",
        );
      }
    } catch (err) {
      renderAccountError(err.message);
    } finally {
      renderAccountBusy(false);
      this.signingOut = false;
      this.outbox.release();
    }
  }
}

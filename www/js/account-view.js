// DOM of the account area, the members of a private room and the sign-out dialog. User data
// (account and member names) only ever goes in through textContent.
//
// Tests and CSS read `#account[data-state]` (`signed-in` / `signed-out`) and `#account-name`.

const $ = (id) => document.getElementById(id);

/** Shows who is signed in (`name`), or the sign-in form when nobody is (`null`). */
export function renderAccount(name) {
  const signedIn = !!name;
  $("account").dataset.state = signedIn ? "signed-in" : "signed-out";
  $("account-name").textContent = name || "";
  $("account-in").hidden = !signedIn;
  $("signin-panel").hidden = signedIn;
  // Only a signed-in user can own a private room, so the choice is offered only then.
  $("new-room-private-field").hidden = !signedIn;
  if (!signedIn) $("new-room-private").checked = false;
}

export function renderAccountError(message) {
  $("account-error").textContent = message || "";
}

/** Disables the account buttons while a request is on its way, so a double click sends one. */
export function renderAccountBusy(busy) {
  for (const id of ["signin-submit", "register-submit", "signout"]) $(id).disabled = busy;
}

/**
 * The members part of a private room: shown only there. The server offers no list of a room's
 * members to read, so the list holds the names added from this page (each with a remove
 * button); `onRemove(name)` is called when one is clicked.
 */
export function renderMembers({ shown, added = [], onRemove }) {
  $("members").hidden = !shown;
  if (!shown) return;
  $("member-list").replaceChildren(
    ...added.map((name) => {
      const li = document.createElement("li");
      li.dataset.member = name;
      const label = document.createElement("span");
      label.textContent = name;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "member-remove";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove ${name}`);
      remove.addEventListener("click", () => onRemove(name));
      li.append(label, remove);
      return li;
    }),
  );
}

export function renderMemberError(message) {
  $("member-error").textContent = message || "";
}

/**
 * Asks before signing out with `unsent` messages still in the outbox. An in-page <dialog>
 * rather than window.confirm: it can be styled, tested through stable ids, and does not block
 * the page's timers and streams while it waits. Resolves to true (sign out) or false (stay).
 */
export function confirmSignOut(unsent) {
  const dialog = $("signout-dialog");
  $("signout-pending").textContent =
    unsent === 1
      ? "1 message you wrote has not been sent yet. It stays on this device and goes up the next time you sign in here."
      : `${unsent} messages you wrote have not been sent yet. They stay on this device and go up the next time you sign in here.`;
  return new Promise((resolve) => {
    const done = (answer) => {
      $("signout-confirm").onclick = null;
      $("signout-cancel").onclick = null;
      dialog.oncancel = null;
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    $("signout-confirm").onclick = () => done(true);
    $("signout-cancel").onclick = () => done(false);
    dialog.oncancel = (e) => {
      e.preventDefault(); // Escape means "stay", answered through the one path above
      done(false);
    };
    dialog.showModal();
    $("signout-cancel").focus(); // the safe answer is the default one
  });
}

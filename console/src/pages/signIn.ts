// Sign-in (e-mail and password, Firebase Auth) and the page a signed-in non-operator sees.
import { FirebaseError } from "firebase/app";
import { signInWithEmailAndPassword, signOut, type User } from "firebase/auth";
import { busy, h, replace } from "../dom";
import type { ConsoleFirebase } from "../firebase";

function authMessage(err: unknown): string {
  const code = err instanceof FirebaseError ? err.code : "";
  switch (code) {
    case "auth/invalid-credential":
    case "auth/wrong-password":
    case "auth/user-not-found":
    case "auth/invalid-login-credentials":
      return "The e-mail or the password is wrong.";
    case "auth/invalid-email":
      return "That is not an e-mail address.";
    case "auth/too-many-requests":
      return "Too many attempts: this account is locked for a while. Try again later or reset the password.";
    case "auth/user-disabled":
      return "This account is disabled.";
    case "auth/network-request-failed":
      return "Firebase Auth is unreachable. Check the connection (under npm start: are the emulators running?).";
    case "auth/operation-not-allowed":
      return "E-mail/password sign-in is not enabled for this project (Firebase console → Authentication → Sign-in method).";
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

export function renderSignIn(app: HTMLElement, fb: ConsoleFirebase): void {
  const error = h("p", { class: "field-error", id: "signin-error", role: "alert" });
  const email = h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true, "aria-describedby": "signin-error" });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true, "aria-describedby": "signin-error" });
  const submit = h("button", { type: "submit", class: "primary wide" }, "Sign in");
  const form = h(
    "form",
    { class: "stack", novalidate: true },
    h("label", { for: "email" }, "E-mail"),
    email,
    h("label", { for: "password" }, "Password"),
    password,
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    if (!email.value.trim() || !password.value) {
      error.textContent = "Enter your e-mail and password.";
      (email.value.trim() ? password : email).focus();
      return;
    }
    await busy(submit, "Signing in…", async () => {
      try {
        await signInWithEmailAndPassword(fb.auth, email.value.trim(), password.value);
      } catch (err) {
        error.textContent = authMessage(err);
        password.select();
      }
    });
  });
  replace(
    app,
    h(
      "main",
      { id: "main", class: "center" },
      h(
        "div",
        { class: "card narrow signin" },
        h("div", { class: "brand big" }, h("span", { class: "logo", "aria-hidden": "true" }), "Offline push"),
        h("h1", {}, "Operator console"),
        h("p", { class: "muted" }, "Upload FCM keys, and find out why a push did or did not arrive."),
        form,
        fb.emulated ? h("p", { class: "hint" }, "Running on the emulators: the demo operator's e-mail and password are printed by ", h("code", {}, "npm start"), ".") : null,
      ),
    ),
  );
  email.focus();
}

export function renderRefusal(app: HTMLElement, fb: ConsoleFirebase, user: User): void {
  const who = user.email ?? user.uid;
  const command = `npx offline-push admin grant ${user.email ?? user.uid}`;
  const status = h("p", { role: "status", class: "muted" });
  const again = h("button", { type: "button", class: "primary" }, "Check again");
  again.addEventListener("click", () =>
    busy(again, "Checking…", async () => {
      const token = await user.getIdTokenResult(true);
      if (token.claims.admin === true) location.reload();
      else status.textContent = `Still no admin claim on ${who}'s token.`;
    }),
  );
  replace(
    app,
    h(
      "main",
      { id: "main", class: "center" },
      h(
        "div",
        { class: "card narrow refusal" },
        h("div", { class: "icon-lock", "aria-hidden": "true" }),
        h("h1", {}, "This account is not an operator"),
        h("p", {}, "You are signed in as ", h("strong", {}, who), ", but the console is only for accounts with the ", h("code", {}, "admin"), " custom claim."),
        h("p", {}, "An operator (or anyone with access to the project's service account) grants it with:"),
        h("pre", { class: "command" }, h("code", {}, command)),
        h("p", { class: "muted" }, "Add ", h("code", {}, "--project <your-project-id>"), " for a deployed project. The claim arrives with your next ID token: come back here and check again."),
        h("div", { class: "row" }, again, h("button", { type: "button", class: "secondary", onclick: () => void signOut(fb.auth) }, "Sign out")),
        status,
      ),
    ),
  );
  again.focus();
}

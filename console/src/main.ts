// The operator console: sign-in, the admin gate, and a hash router over four pages.
import "./style.css";
import { onAuthStateChanged, signOut, type User } from "firebase/auth";
import { makeApi, type Api } from "./api";
import { h, replace, spinner } from "./dom";
import { initFirebase, type ConsoleFirebase } from "./firebase";
import type { Page } from "./page";
import { renderCertificates } from "./pages/certificates";
import { renderMessage } from "./pages/message";
import { renderOverview } from "./pages/overview";
import { renderRefusal, renderSignIn } from "./pages/signIn";
import { renderUser } from "./pages/user";

const PAGES: Record<string, { title: string; render: Page }> = {
  overview: { title: "Overview", render: renderOverview },
  certificates: { title: "Certificates", render: renderCertificates },
  user: { title: "User", render: renderUser },
  message: { title: "Message", render: renderMessage },
};
const DEFAULT_PAGE = "certificates";

const app = document.getElementById("app") as HTMLElement;

function route(): { page: string; arg: string } {
  const [, page = "", ...rest] = location.hash.replace(/^#/, "").split("/");
  const arg = rest.join("/");
  let decoded = "";
  try {
    decoded = decodeURIComponent(arg);
  } catch {
    decoded = arg;
  }
  return { page: page in PAGES ? page : DEFAULT_PAGE, arg: decoded };
}

function shell(fb: ConsoleFirebase, user: User, api: Api): void {
  const main = h("main", { id: "main", tabindex: -1 });
  const nav = h("nav", { "aria-label": "Console pages" });
  const header = h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "#/overview" }, h("span", { class: "logo", "aria-hidden": "true" }), h("span", {}, "Offline push"), fb.emulated ? h("span", { class: "env" }, "emulators") : null),
    nav,
    h(
      "div",
      { class: "who" },
      h("span", { class: "email", title: user.email ?? user.uid }, user.email ?? user.uid),
      h("button", { type: "button", class: "secondary small", onclick: () => void signOut(fb.auth) }, "Sign out"),
    ),
  );
  replace(app, header, main);

  let generation = 0;
  const show = async () => {
    const { page, arg } = route();
    const current = ++generation;
    replace(
      nav,
      ...Object.entries(PAGES).map(([key, p]) => h("a", { href: `#/${key}`, "aria-current": key === page ? "page" : null }, p.title)),
    );
    document.title = `${PAGES[page]!.title} · Offline push console`;
    main.replaceChildren();
    const root = h("div", { class: "page" });
    main.append(root);
    try {
      await PAGES[page]!.render(root, { api, user, arg, navigate: (hash) => (location.hash = hash) });
    } catch (err) {
      if (current === generation) root.append(h("div", { class: "error", role: "alert" }, String(err)));
    }
  };
  window.onhashchange = () => {
    void show().then(() => main.focus({ preventScroll: true }));
  };
  void show();
}

async function boot(): Promise<void> {
  let fb: ConsoleFirebase;
  try {
    fb = await initFirebase();
  } catch (err) {
    replace(app, h("main", { class: "center" }, h("div", { class: "card narrow error", role: "alert" }, h("h1", {}, "The console cannot start"), h("p", {}, err instanceof Error ? err.message : String(err)))));
    return;
  }
  const api = makeApi(fb.functions);
  onAuthStateChanged(fb.auth, async (user) => {
    window.onhashchange = null;
    if (!user) {
      renderSignIn(app, fb);
      return;
    }
    replace(app, h("main", { class: "center" }, spinner("Checking your access…")));
    // Claims live in the ID token: a forced refresh picks up a grant made since the last sign-in.
    const token = await user.getIdTokenResult(true).catch(() => user.getIdTokenResult());
    if (token.claims.admin === true) shell(fb, user, api);
    else renderRefusal(app, fb, user);
  });
}

void boot();

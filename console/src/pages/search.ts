// The frame of a page that looks one thing up (a user, a message): a search form whose key is in
// the URL (#/page/<key>), so a result can be linked and reloaded, and a results area below.
import { busy, card, errorBox, h, replace, spinner } from "../dom";
import type { PageContext } from "../page";

export interface SearchPageOptions {
  /** The input's id and form field name. */
  field: string;
  label: string;
  placeholder: string;
  button: string;
  /** "Tracing": the spinner says "Tracing <key>…", the button "Tracing…". */
  verb: string;
  /** The route the key is appended to, e.g. "#/user/". */
  route: string;
  title: string;
  intro: string;
  /** The error box's heading for a failed lookup. */
  failure: (key: string) => string;
  /** Looks `key` up and fills `out` with the result. */
  show: (key: string, out: HTMLElement) => Promise<void>;
}

export async function renderSearchPage(root: HTMLElement, ctx: PageContext, page: SearchPageOptions): Promise<void> {
  const input = h("input", { id: page.field, name: page.field, type: "text", required: true, value: ctx.arg, autocomplete: "off", spellcheck: "false", placeholder: page.placeholder });
  const go = h("button", { type: "submit", class: "primary" }, page.button);
  const out = h("div", { class: "results" });
  const form = h("form", { class: "search", role: "search" }, h("label", { for: page.field }, page.label), h("div", { class: "search-row" }, input, go));
  const load = async (key: string) => {
    replace(out, spinner(`${page.verb} ${key}…`));
    try {
      await busy(go, `${page.verb}…`, () => page.show(key, out));
    } catch (err) {
      replace(out, errorBox(err, page.failure(key)));
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) return input.focus();
    if (key === ctx.arg) void load(key);
    else ctx.navigate(`${page.route}${encodeURIComponent(key)}`);
  });
  replace(root, h("div", { class: "page-head" }, h("h1", {}, page.title), h("p", { class: "muted" }, page.intro)), card(null, form), out);
  if (ctx.arg) await load(ctx.arg);
  else input.focus();
}

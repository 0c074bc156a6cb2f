// What a page of the console is given and what it is: the pages depend on this, and main.ts (the
// router) depends on the pages, never the other way round.
import type { User } from "firebase/auth";
import type { Api } from "./api";

export interface PageContext {
  api: Api;
  user: User;
  /** The route's argument (a uid, a msgKey), decoded; "" when none. */
  arg: string;
  navigate: (hash: string) => void;
}

export type Page = (root: HTMLElement, ctx: PageContext) => void | Promise<void>;

// App-side callables: the signed-in user's own push preferences (users/{uid}.prefs), never anyone else's.
import { callable } from "../common/callable";
import { GetPushPreferencesRequestSchema, SetPushPreferencesRequestSchema } from "./schemas";
import { getPreferences, setPreferences } from "./store";

export const setPushPreferences = callable({ name: "setPushPreferences", access: "user", schema: SetPushPreferencesRequestSchema }, async (request, caller) =>
  setPreferences(caller.uid, request),
);

export const getPushPreferences = callable({ name: "getPushPreferences", access: "user", schema: GetPushPreferencesRequestSchema }, async (_request, caller) =>
  getPreferences(caller.uid),
);

import js from "@eslint/js";
import tseslint from "typescript-eslint";

// The directions imports may take inside functions/src. Matched on the import as written (relative
// paths), type-only imports included. A new import the wrong way fails `npm run lint` with the reason.
const restricted = (...patterns) => ["error", { patterns }];
const OPERATOR_TOOLS = {
  regex: "(^|/)(diagnostics|bench)(/|$)",
  message:
    "diagnostics/ and bench/ are operator tools on top of the capabilities: the hot path and the services must not depend on them. Put what both need here (or below), and let the tool read it (e.g. fanout/pushStats.ts).",
};

export default tseslint.config(
  { ignores: ["lib/**", "node_modules/**"] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "no-console": "error",
    },
  },
  {
    files: ["src/config.ts"],
    rules: {
      "no-restricted-imports": restricted({
        regex: "^\\.",
        message: "config.ts is the bottom layer: every module may read a setting, so it imports nothing of the project (a misconfiguration is its own ConfigurationError).",
      }),
    },
  },
  {
    files: ["src/common/**"],
    rules: {
      "no-restricted-imports": restricted({
        regex: "^\\.\\./(?!config$)",
        message: "common/ (callable wrapper, errors, Firestore) sits below the capabilities: it may read ../config and nothing else outside common/.",
      }),
    },
  },
  { files: ["src/fcm/**", "src/certificates/**", "src/fanout/**", "src/presence/**"], rules: { "no-restricted-imports": restricted(OPERATOR_TOOLS) } },
  {
    files: ["src/sessions/**"],
    rules: {
      "no-restricted-imports": restricted(OPERATOR_TOOLS, {
        regex: "(^|/)presence(/|$)",
        message: "presence/ applies the IM backend's events on top of the sessions (it calls sessions/store.ts): sessions must not depend on it. The stored presence and its reading live in sessions/.",
      }),
    },
  },
);

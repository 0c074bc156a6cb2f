// Lints the tests, the fake FCM, the scripts, the CLI and the console; functions/ has its own config (stricter).
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

// The directions imports may take (functions/eslint.config.mjs has those inside the functions).
// Matched on the import as written, type-only imports included; the message says why.
const NO_TEST_TOOLS = {
  regex: "^(\\.\\./)+(tools|test)/",
  message: "the CLI and the console ship to operators of real projects: they reach the fake FCM (and any test tool) over its HTTP API, as any client would, never through its source.",
};

export default tseslint.config(
  { ignores: ["functions/**", "**/node_modules/**", ".emulators/**", "console/dist/**", "test-results/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  // The console runs in the browser.
  { files: ["console/src/**"], languageOptions: { globals: { ...globals.browser } } },
  { files: ["cli/**"], rules: { "no-restricted-imports": ["error", { patterns: [NO_TEST_TOOLS] }] } },
  {
    files: ["console/src/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            NO_TEST_TOOLS,
            {
              regex: "(^|/)main(\\.ts)?$",
              message: "main.ts (the router) depends on the pages, not the other way round: what pages share lives in page.ts (PageContext), dom.ts or api.ts.",
            },
          ],
        },
      ],
    },
  },
);

// Lints the tests, the fake FCM, the scripts, the CLI and the console; functions/ has its own config (stricter).
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

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
);

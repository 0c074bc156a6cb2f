// The operator console: a static single-page app served by Firebase Hosting (and the Hosting
// emulator under `npm start`). Built into console/dist, which firebase.json's hosting serves.
import { defineConfig } from "vite";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root,
  // The config is read at run time from Hosting's /__/firebase/init.json: nothing project-specific
  // is baked into the bundle, so one build serves the emulator and every real project.
  envPrefix: "CONSOLE_NO_ENV_",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: true,
    chunkSizeWarningLimit: 800,
  },
});

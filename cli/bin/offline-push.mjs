#!/usr/bin/env node
// The CLI is TypeScript run through tsx: it imports the functions' zod schemas from source
// (functions/src, CommonJS with extensionless imports, hence both hooks), so there is no second
// build to keep in step and `npx offline-push` works right after `npm ci`, offline.
import { register as registerCjs } from "tsx/cjs/api";
import { register as registerEsm } from "tsx/esm/api";

registerCjs();
registerEsm();
await import("../src/main.ts");

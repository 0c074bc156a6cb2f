// Entry point: every deployed function, by capability.
import { setGlobalOptions } from "firebase-functions/v2";
import { REGION } from "./config";

setGlobalOptions({ region: REGION, maxInstances: 20 });

export {
  registerPushCertificate,
  updatePushCertificate,
  listPushCertificates,
  deletePushCertificate,
} from "./certificates/functions";

export { login, setOfflinePushToken, doBackground, doForeground, heartbeat, logout } from "./sessions/functions";

export { setPushPreferences, getPushPreferences } from "./preferences/functions";

export { offlinePushFanout, offlinePushBatch, offlinePushResume, sendMessage } from "./fanout/functions";

export { offlinePushPresence } from "./presence/functions";

export { diagnosePush, traceMessage, sendTestPush, pushStats, reportPushOpened } from "./diagnostics/functions";

// The bench's naive baseline (functions/src/bench): the Functions emulator only (FUNCTIONS_EMULATOR
// is "true" there, also when it discovers the functions; a deploy's discovery never sets it).
import { benchNaiveFanout as naive } from "./bench/naiveFanout";
export const benchNaiveFanout = process.env.FUNCTIONS_EMULATOR === "true" ? naive : undefined;

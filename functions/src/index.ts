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

export { offlinePushFanout, offlinePushBatch, sendMessage } from "./fanout/functions";

// The bench's naive baseline (functions/src/bench): only on the emulator, only for `npm run bench`.
import { benchNaiveFanout as naive } from "./bench/naiveFanout";
export const benchNaiveFanout = process.env.OFFLINE_PUSH_BENCH_BASELINE === "on" ? naive : undefined;

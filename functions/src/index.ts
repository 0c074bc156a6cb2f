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

export { diagnosePush, traceMessage, sendTestPush, pushStats, reportPushOpened } from "./diagnostics/functions";

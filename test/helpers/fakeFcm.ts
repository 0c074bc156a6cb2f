// The fake FCM that `npm test` starts beside the emulators (tools/fake-fcm), driven over its control API.
import { FakeFcmClient } from "../../tools/fake-fcm/client.ts";

export type { ServiceAccountJson, RecordedRequest } from "../../tools/fake-fcm/client.ts";

export const fakeFcm = new FakeFcmClient(process.env.FAKE_FCM_CONTROL_ORIGIN ?? "http://127.0.0.1:9471");

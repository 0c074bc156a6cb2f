// Operator callables (custom claim `admin: true`) for push certificates: FCM service-account keys.
import { callable } from "../common/callable";
import { DomainError } from "../common/errors";
import { keyEncryptionKey, keyEncryptionKeySecret } from "../config";
import { logCertificateChange } from "./logs";
import {
  DeleteRequestSchema,
  ListRequestSchema,
  RegisterRequestSchema,
  UpdateRequestSchema,
} from "./schemas";
import { certificateHoldingKey, countBoundTokens, createCertificate, deleteCertificate, duplicateKeyError, getCertificate, listCertificates, updateCertificate } from "./store";
import { verifyWithFcm } from "./verify";

export const registerPushCertificate = callable(
  { name: "registerPushCertificate", access: "admin", schema: RegisterRequestSchema, secrets: [keyEncryptionKeySecret] },
  async ({ serviceAccount, label, allowDuplicateKey }, caller) => {
    const kek = keyEncryptionKey();
    // A key already registered is said before an FCM round trip (and checked again where the ID is allocated).
    if (!allowDuplicateKey) {
      const holder = await certificateHoldingKey(serviceAccount.private_key_id);
      if (holder) throw duplicateKeyError(serviceAccount.private_key_id, holder);
    }
    // Checked against FCM before anything is stored: a key FCM rejects leaves no trace.
    await verifyWithFcm(serviceAccount);
    const cert = await createCertificate(serviceAccount, label ?? null, kek, { allowDuplicateKey });
    logCertificateChange("registered", cert, caller.uid);
    return {
      certificateId: cert.certificateId,
      projectId: cert.projectId,
      clientEmail: cert.clientEmail,
      privateKeyId: cert.privateKeyId,
      label: cert.label,
      createdAt: cert.createdAt,
    };
  },
);

export const updatePushCertificate = callable(
  { name: "updatePushCertificate", access: "admin", schema: UpdateRequestSchema, secrets: [keyEncryptionKeySecret] },
  async ({ certificateId, serviceAccount, label, allowProjectChange }, caller) => {
    const kek = keyEncryptionKey();
    const current = await getCertificate(certificateId); // not-found before spending an FCM round trip
    if (serviceAccount && serviceAccount.project_id !== current.projectId && !allowProjectChange) {
      throw new DomainError(
        "failed-precondition",
        `serviceAccount.project_id: certificate ${certificateId} sends for project ${current.projectId}, this key is for ${serviceAccount.project_id}; ` +
          "the app's tokens belong to the old project and would all be rejected and unbound. Register a new certificate, or pass allowProjectChange: true",
        // `override` names the request field that accepts it, so a tool can name its own flag for it.
        { field: "serviceAccount.project_id", currentProjectId: current.projectId, keyProjectId: serviceAccount.project_id, override: "allowProjectChange" },
      );
    }
    // A new key is verified first: a rejected update leaves the old key in use.
    if (serviceAccount) await verifyWithFcm(serviceAccount);
    const cert = await updateCertificate(certificateId, { serviceAccount, label }, kek);
    logCertificateChange(serviceAccount ? "key-replaced" : "relabelled", cert, caller.uid);
    return cert;
  },
);

export const listPushCertificates = callable(
  { name: "listPushCertificates", access: "admin", schema: ListRequestSchema },
  async () => ({ certificates: await listCertificates() }),
);

export const deletePushCertificate = callable(
  { name: "deletePushCertificate", access: "admin", schema: DeleteRequestSchema },
  async ({ certificateId, dryRun }, caller) => {
    if (dryRun) return { deleted: false, ...(await countBoundTokens(certificateId)) };
    const result = await deleteCertificate(certificateId);
    logCertificateChange("deleted", { certificateId }, caller.uid);
    return { deleted: true, ...result };
  },
);

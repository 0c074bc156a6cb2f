// Every certificate log line is a named function, so what is logged is reviewable in one place:
// metadata only, never key material.
import * as logger from "firebase-functions/logger";
import type { PublicCertificate } from "./schemas";

export function logCertificateChange(
  change: "registered" | "key-replaced" | "relabelled" | "deleted",
  cert: Pick<PublicCertificate, "certificateId"> & Partial<PublicCertificate>,
  byUid: string,
): void {
  logger.info(`push certificate ${cert.certificateId} ${change}`, {
    certificateId: cert.certificateId,
    projectId: cert.projectId,
    clientEmail: cert.clientEmail,
    privateKeyId: cert.privateKeyId,
    version: cert.version,
    byUid,
  });
}

export function logCertificateRejected(projectId: string, clientEmail: string, reason: string): void {
  logger.warn("push certificate rejected by FCM", { projectId, clientEmail, reason });
}

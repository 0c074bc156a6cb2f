// Schemas are the single source of the certificate types (requests, stored documents, responses).
import { createPrivateKey } from "node:crypto";
import { z } from "zod";
import { MAX_SERVICE_ACCOUNT_BYTES } from "../config";

function isRsaPrivateKey(pem: string): boolean {
  try {
    return createPrivateKey({ key: pem, format: "pem" }).asymmetricKeyType === "rsa";
  } catch {
    return false;
  }
}

/**
 * The JSON that the Firebase console's "Generate new private key" downloads. Google's other fields
 * (client_id, auth_uri, universe_domain...) are accepted and dropped: we keep what we use.
 * Error messages never echo the input, so a bad key never reaches a response or a log.
 */
export const ServiceAccountObjectSchema = z.object({
  type: z.literal("service_account", { error: 'must be "service_account" (the file from "Generate new private key")' }),
  project_id: z
    .string({ error: "is required" })
    .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, "is not a Google Cloud project ID"),
  private_key_id: z
    .string({ error: "is required" })
    .regex(/^[A-Za-z0-9_-]{1,128}$/, "is not a key ID"),
  private_key: z
    .string({ error: "is required" })
    .max(8192, "is too long for an RSA private key")
    .refine((pem) => pem.includes("-----BEGIN") && isRsaPrivateKey(pem), "is not a PEM-encoded RSA private key"),
  client_email: z.email({ error: "is not an email address" }),
  token_uri: z.url({ protocol: /^https?$/, error: "is not a URL" }),
});

/** `serviceAccount` may be the file's text or the parsed object. */
export const ServiceAccountSchema = z
  .union([z.string(), z.record(z.string(), z.unknown())], { error: "must be the service-account JSON (a string or an object)" })
  .transform((value, ctx) => {
    if (typeof value !== "string") return value;
    if (Buffer.byteLength(value) > MAX_SERVICE_ACCOUNT_BYTES) {
      ctx.addIssue({ code: "custom", message: `is larger than ${MAX_SERVICE_ACCOUNT_BYTES} bytes: not a service-account file` });
      return z.NEVER;
    }
    try {
      return JSON.parse(value) as unknown;
    } catch {
      ctx.addIssue({ code: "custom", message: "is not valid JSON" });
      return z.NEVER;
    }
  })
  .pipe(
    z.unknown().superRefine((value, ctx) => {
      // An object given directly is bounded the same way as a string.
      if (Buffer.byteLength(JSON.stringify(value) ?? "") > MAX_SERVICE_ACCOUNT_BYTES) {
        ctx.addIssue({ code: "custom", message: `is larger than ${MAX_SERVICE_ACCOUNT_BYTES} bytes: not a service-account file` });
      }
    }),
  )
  .pipe(ServiceAccountObjectSchema);

export type ServiceAccount = z.output<typeof ServiceAccountObjectSchema>;

export const CertificateIdSchema = z.number({ error: "must be a certificate ID (a positive integer)" }).int().positive().max(Number.MAX_SAFE_INTEGER);
const LabelSchema = z.string().trim().min(1, "must not be empty").max(100, "is longer than 100 characters");

export const RegisterRequestSchema = z.strictObject({
  serviceAccount: ServiceAccountSchema,
  label: LabelSchema.optional(),
  /**
   * A key whose private key ID a certificate already holds is refused (ALREADY_EXISTS, naming
   * that certificate): registering it again is almost always a mistake that leaves two IDs for
   * one key. Only on explicit request.
   */
  allowDuplicateKey: z.boolean({ error: "must be true or false" }).optional(),
});

export const UpdateRequestSchema = z
  .strictObject({
    certificateId: CertificateIdSchema,
    serviceAccount: ServiceAccountSchema.optional(),
    label: LabelSchema.nullable().optional(),
    /**
     * A key of another Firebase project invalidates every token bound to this certificate (FCM
     * answers SENDER_ID_MISMATCH and the tokens are unbound): only on explicit request.
     */
    allowProjectChange: z.boolean({ error: "must be true or false" }).optional(),
  })
  .refine((r) => r.serviceAccount !== undefined || r.label !== undefined, {
    message: "give serviceAccount and/or label to change",
    path: ["serviceAccount"],
  });

export const CertificateIdRequestSchema = z.strictObject({ certificateId: CertificateIdSchema });
export const DeleteRequestSchema = CertificateIdRequestSchema.extend({
  /** Only count the device tokens bound to it (for a confirmation that says what a delete would cost). */
  dryRun: z.boolean().optional(),
});
export const ListRequestSchema = z.strictObject({});

export const HealthSchema = z.object({
  state: z.enum(["healthy", "unhealthy"]),
  reason: z.string().nullable(),
  since: z.string().nullable(),
});
export type CertificateHealth = z.output<typeof HealthSchema>;

/** What operators see of a certificate: metadata only, never key material. */
export const PublicCertificateSchema = z.strictObject({
  certificateId: z.number(),
  label: z.string().nullable(),
  projectId: z.string(),
  clientEmail: z.string(),
  privateKeyId: z.string(),
  version: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
  health: HealthSchema,
});
export type PublicCertificate = z.output<typeof PublicCertificateSchema>;

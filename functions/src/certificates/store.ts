// Firestore access for push certificates. Documents are server-only (rules deny every client).
//   meta/pushCertificateIds    { lastId }   the ID allocator: IDs are never reused
//   pushCertificates/{id}      metadata + encrypted key + version + health
import { FieldValue, Timestamp, type DocumentSnapshot } from "firebase-admin/firestore";
import { z } from "zod";
import { DomainError } from "../common/errors";
import { db, runBoundedTransaction } from "../common/firestore";
import { ConfigurationError } from "../config";
import { decryptPrivateKey, encryptPrivateKey, EncryptedKeySchema } from "./keyEncryption";
import { PublicCertificateSchema, type PublicCertificate, type ServiceAccount } from "./schemas";

export const CERTIFICATES = "pushCertificates";
const ID_ALLOCATOR = "meta/pushCertificateIds";

const TimestampSchema = z.instanceof(Timestamp);

const StoredCertificateSchema = z.object({
  certificateId: z.number(),
  label: z.string().nullable(),
  projectId: z.string(),
  clientEmail: z.string(),
  privateKeyId: z.string(),
  encryptedKey: EncryptedKeySchema,
  version: z.number(),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
  health: z.object({
    state: z.enum(["healthy", "unhealthy"]),
    reason: z.string().nullable(),
    since: TimestampSchema.nullable(),
  }),
});
type StoredCertificate = z.output<typeof StoredCertificateSchema>;
/** Every field of a stored certificate: a read with a field mask (the fan-out's) must ask for these. */
export const CERTIFICATE_FIELDS: readonly string[] = Object.keys(StoredCertificateSchema.shape);

/** Fields that are safe to read for listing: `select()` keeps ciphertext out of the response path. */
const METADATA_FIELDS = ["certificateId", "label", "projectId", "clientEmail", "privateKeyId", "version", "createdAt", "updatedAt", "health"];

export const certRef = (id: number) => db().collection(CERTIFICATES).doc(String(id));

function toPublic(doc: Omit<StoredCertificate, "encryptedKey">): PublicCertificate {
  return PublicCertificateSchema.parse({
    certificateId: doc.certificateId,
    label: doc.label,
    projectId: doc.projectId,
    clientEmail: doc.clientEmail,
    privateKeyId: doc.privateKeyId,
    version: doc.version,
    createdAt: doc.createdAt.toDate().toISOString(),
    updatedAt: doc.updatedAt.toDate().toISOString(),
    health: { state: doc.health.state, reason: doc.health.reason, since: doc.health.since?.toDate().toISOString() ?? null },
  });
}

function parseStored(snap: DocumentSnapshot): StoredCertificate {
  return StoredCertificateSchema.parse(snap.data());
}

const healthy = { state: "healthy" as const, reason: null, since: null };

/** A certificate that already holds a private key ID. */
export interface KeyHolder {
  certificateId: number;
  label: string | null;
}

// One equality filter: the automatic single-field index serves it (an orderBy would need a composite one).
const holdersQuery = (privateKeyId: string) => db().collection(CERTIFICATES).where("privateKeyId", "==", privateKeyId).select("certificateId", "label").limit(20);

function holderOf(snaps: { docs: DocumentSnapshot[] }): KeyHolder | null {
  const holders = snaps.docs.map((doc) => ({ certificateId: Number(doc.get("certificateId")), label: (doc.get("label") as string | null | undefined) ?? null }));
  return holders.sort((a, b) => a.certificateId - b.certificateId)[0] ?? null;
}

/** The certificate that holds this private key ID, if any (the lowest ID when several do). */
export async function certificateHoldingKey(privateKeyId: string): Promise<KeyHolder | null> {
  return holderOf(await holdersQuery(privateKeyId).get());
}

export function duplicateKeyError(privateKeyId: string, holder: KeyHolder): DomainError {
  return new DomainError(
    "already-exists",
    `serviceAccount.private_key_id: this key (ID ${privateKeyId.slice(0, 12)}…) is already registered as certificate ${holder.certificateId}${holder.label ? ` ("${holder.label}")` : ""}: ` +
      "apps can report that certificate ID. To register the same key again as a new certificate, pass allowDuplicateKey: true",
    { field: "serviceAccount.private_key_id", certificateId: holder.certificateId, label: holder.label, override: "allowDuplicateKey" },
  );
}

/**
 * Allocates the next ID and stores the certificate in one transaction: concurrent registrations
 * get distinct IDs. Unless `allowDuplicateKey`, the same transaction reads which certificate holds
 * the key ID, so two concurrent registrations of one key cannot both pass.
 */
export async function createCertificate(sa: ServiceAccount, label: string | null, kek: Buffer, options: { allowDuplicateKey?: boolean } = {}): Promise<PublicCertificate> {
  const id = await runBoundedTransaction(async (tx) => {
    const allocator = db().doc(ID_ALLOCATOR);
    const [allocated, holders] = await Promise.all([tx.get(allocator), options.allowDuplicateKey ? null : tx.get(holdersQuery(sa.private_key_id))]);
    const holder = holders ? holderOf(holders) : null;
    if (holder) throw duplicateKeyError(sa.private_key_id, holder);
    const lastId = (allocated.get("lastId") as number | undefined) ?? 0;
    const certificateId = lastId + 1;
    tx.set(allocator, { lastId: certificateId }, { merge: true });
    tx.create(certRef(certificateId), {
      certificateId,
      label,
      projectId: sa.project_id,
      clientEmail: sa.client_email,
      privateKeyId: sa.private_key_id,
      encryptedKey: encryptPrivateKey(sa.private_key, kek, certificateId),
      version: 1,
      createdAt: FieldValue.serverTimestamp(),
      updatedAt: FieldValue.serverTimestamp(),
      health: healthy,
    });
    return certificateId;
  });
  return getCertificate(id);
}

export async function getCertificate(certificateId: number): Promise<PublicCertificate> {
  const snap = await certRef(certificateId).get();
  if (!snap.exists) throw new DomainError("not-found", `certificateId: no push certificate ${certificateId}`, { field: "certificateId" });
  return toPublic(parseStored(snap));
}

export async function listCertificates(): Promise<PublicCertificate[]> {
  const snaps = await db().collection(CERTIFICATES).select(...METADATA_FIELDS).orderBy("certificateId").get();
  return snaps.docs.map((d) => toPublic(StoredCertificateSchema.omit({ encryptedKey: true }).parse(d.data())));
}

/**
 * Replaces the key and/or label. The version goes up with a new key, so every instance's
 * token cache (keyed by certificateId:version) misses at once: the change takes effect immediately.
 */
export async function updateCertificate(
  certificateId: number,
  change: { serviceAccount?: ServiceAccount; label?: string | null },
  kek: Buffer,
): Promise<PublicCertificate> {
  await runBoundedTransaction(async (tx) => {
    const snap = await tx.get(certRef(certificateId));
    if (!snap.exists) throw new DomainError("not-found", `certificateId: no push certificate ${certificateId}`, { field: "certificateId" });
    const current = parseStored(snap);
    const update: Record<string, unknown> = { updatedAt: FieldValue.serverTimestamp() };
    if (change.label !== undefined) update.label = change.label;
    const sa = change.serviceAccount;
    if (sa) {
      Object.assign(update, {
        projectId: sa.project_id,
        clientEmail: sa.client_email,
        privateKeyId: sa.private_key_id,
        encryptedKey: encryptPrivateKey(sa.private_key, kek, certificateId),
        version: current.version + 1,
        health: healthy,
      });
    }
    tx.update(certRef(certificateId), update);
  });
  return getCertificate(certificateId);
}

/** How many device tokens are bound to an existing certificate: one aggregation query, no token read. */
export async function countBoundTokens(certificateId: number): Promise<{ certificateId: number; boundTokens: number }> {
  const snap = await certRef(certificateId).get();
  if (!snap.exists) throw new DomainError("not-found", `certificateId: no push certificate ${certificateId}`, { field: "certificateId" });
  const count = await db().collection("pushTokens").where("certificateId", "==", certificateId).count().get();
  return { certificateId, boundTokens: count.data().count };
}

/** Deletes a certificate; tells how many device tokens were bound to it (they now report `certificate-missing`). */
export async function deleteCertificate(certificateId: number): Promise<{ certificateId: number; boundTokens: number }> {
  const counted = await countBoundTokens(certificateId);
  await certRef(certificateId).delete();
  return counted;
}

export interface CertificateCredentials {
  certificateId: number;
  version: number;
  projectId: string;
  clientEmail: string;
  privateKeyId: string;
  privateKey: string;
  health: PublicCertificate["health"];
}

export interface LoadedCredentials {
  credentials: Map<number, CertificateCredentials>;
  /** Certificates that exist but cannot be used (undecryptable key, malformed document): why, per ID. */
  unreadable: Map<number, string>;
}

/**
 * For senders: reads certificates (one getAll) and decrypts their keys, each on its own: one
 * certificate that cannot be read or decrypted (a changed key-encryption key, a hand-edited
 * document) is reported in `unreadable` and harms no other. Missing ones are in neither map.
 * A Firestore error (transient) is thrown.
 */
export async function loadCredentials(certificateIds: number[], kek: () => Buffer, into: LoadedCredentials = { credentials: new Map(), unreadable: new Map() }): Promise<LoadedCredentials> {
  const ids = [...new Set(certificateIds)];
  if (ids.length === 0) return into;
  return credentialsFromSnapshots(await db().getAll(...ids.map(certRef)), kek, into);
}

/**
 * The same, from certificate documents already read: the fan-out reads the certificates it expects
 * in the same getAll as the recipients' devices (one read call instead of two).
 */
export function credentialsFromSnapshots(snaps: DocumentSnapshot[], kek: () => Buffer, into: LoadedCredentials = { credentials: new Map(), unreadable: new Map() }): LoadedCredentials {
  for (const snap of snaps) {
    if (!snap.exists) continue;
    const id = Number(snap.id);
    try {
      const doc = parseStored(snap);
      into.credentials.set(id, {
        certificateId: doc.certificateId,
        version: doc.version,
        projectId: doc.projectId,
        clientEmail: doc.clientEmail,
        privateKeyId: doc.privateKeyId,
        privateKey: decryptPrivateKey(doc.encryptedKey, kek(), doc.certificateId),
        health: toPublic(doc).health,
      });
    } catch (err) {
      // Never the error's own text for a decryption failure: say what an operator can act on.
      const why = err instanceof z.ZodError ? "its stored document is not in the expected format (edited by hand?)" : err instanceof ConfigurationError ? err.message : "its key could not be decrypted (was PUSH_KEY_ENCRYPTION_KEY changed?)";
      into.unreadable.set(id, why);
    }
  }
  return into;
}

/** A certificate flagged unhealthy that FCM accepted again: healthy. Only if it still has the key that worked. */
export async function markCertificateHealthy(certificateId: number, version: number): Promise<void> {
  await runBoundedTransaction(async (tx) => {
    const snap = await tx.get(certRef(certificateId));
    if (!snap.exists || snap.get("version") !== version || snap.get("health.state") !== "unhealthy") return;
    tx.update(certRef(certificateId), { health: { state: "healthy", reason: null, since: FieldValue.serverTimestamp() } });
  });
}

/** Flags a certificate FCM refused (401/403): operators see it in listPushCertificates. Only if still the same key. */
export async function markCertificateUnhealthy(certificateId: number, version: number, reason: string): Promise<void> {
  await runBoundedTransaction(async (tx) => {
    const snap = await tx.get(certRef(certificateId));
    if (!snap.exists || snap.get("version") !== version) return;
    if (snap.get("health.state") === "unhealthy" && snap.get("health.reason") === reason) return;
    tx.update(certRef(certificateId), { health: { state: "unhealthy", reason, since: FieldValue.serverTimestamp() } });
  });
}

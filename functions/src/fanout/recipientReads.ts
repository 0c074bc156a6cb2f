// Reading the recipients' devices (users/{uid}) and the certificates their tokens name.
//
// A read call has a fixed cost besides its documents: the round trip, and, in the function, the
// response's decoding, which for a group is CPU on the critical path. So the batches one
// invocation processes together (the inline batches of an event) are read together: consecutive
// batches share a call of up to MAX_RECIPIENTS_PER_READ recipients (a 300-recipient group is one
// call, a 1,000-recipient group three), the calls run in parallel, and each batch goes on as soon
// as the call holding its recipients is in. A batch read on its own (a published batch, a
// re-read after waiting for a busy batch) makes the same calls for itself.
//
// The certificates this instance sent with lately come in every call, fresh (a deleted, replaced
// or refused certificate is seen at once): usually no read call of their own. Those it has not
// used yet (a cold instance, a new certificate) are read once for the batches that ask for them
// at the same time (loadCertificates), not once per batch.
import type { DocumentSnapshot, FieldPath } from "firebase-admin/firestore";
import { CERTIFICATE_FIELDS, certRef, credentialsFromSnapshots, type LoadedCredentials } from "../certificates/store";
import { db } from "../common/firestore";
import { recipientFieldMask } from "../preferences/read";
import { USERS, parseUserDevices } from "../sessions/schemas";
import type { CostCounter } from "./cost";

/**
 * Recipients per read call at most: two default batches. Measured on the emulators, one call of
 * 300 documents answers sooner than three parallel calls of 100 and a call of 400 is not slower
 * than four of 100, while the calls of a large group still run side by side. At most 1 call per
 * 100 recipients either way (the cost rule), here 1 per 400 at full calls.
 */
export const MAX_RECIPIENTS_PER_READ = 400;

export interface RecipientRead {
  /** The recipients' user documents (some may not exist), in the order asked. */
  users: DocumentSnapshot[];
  certificates: LoadedCredentials;
  /** Certificate IDs read (whether they exist or not). */
  certificatesRead: Set<number>;
  /** When the read call started (epoch ms): the devices are as stored at least this recently. */
  readAt: number;
}

/**
 * The certificates this instance sent with lately, most recent last. Bounded: a project has a
 * handful of certificates.
 */
const recentCertificates = new Set<number>();
const MAX_RECENT_CERTIFICATES = 16;

export function rememberCertificates(ids: number[]): void {
  for (const id of ids) {
    recentCertificates.delete(id);
    recentCertificates.add(id);
  }
  for (const id of recentCertificates) {
    if (recentCertificates.size <= MAX_RECENT_CERTIFICATES) break;
    recentCertificates.delete(id);
  }
}

/** Whom a batch reads: its recipients but the sender (whose own devices are never pushed). */
export function recipientsToRead(uids: string[], from: string): string[] {
  return uids.filter((uid) => uid !== from);
}

/** Certificate reads in flight in this instance, by ID: a batch that needs one being read waits for that read. */
const certificateLoads = new Map<number, Promise<DocumentSnapshot | undefined>>();

/**
 * The documents of certificates that the recent set did not bring: one getAll for those no other
 * batch of this instance is reading right now (counted in this batch's cost), shared with the
 * batches that ask for them meanwhile. Then they join the recent set (rememberCertificates).
 */
export async function loadCertificates(ids: number[], cost: CostCounter): Promise<DocumentSnapshot[]> {
  const unread = [...new Set(ids)].filter((id) => !certificateLoads.has(id));
  if (unread.length > 0) {
    cost.firestoreReads++;
    const call = db().getAll(...unread.map(certRef));
    unread.forEach((id, i) => {
      const one = call.then((snaps) => snaps[i]);
      certificateLoads.set(id, one);
      void one.then(
        () => certificateLoads.delete(id),
        () => certificateLoads.delete(id),
      );
    });
  }
  const snaps = await Promise.all([...new Set(ids)].map((id) => certificateLoads.get(id) ?? Promise.resolve(undefined)));
  return snaps.filter((s): s is DocumentSnapshot => s !== undefined);
}

/** The recipients' documents, and the recent certificates' (read in the same call). */
interface CallResult {
  users: DocumentSnapshot[];
  certificateIds: number[];
  certificates: DocumentSnapshot[];
  readAt: number;
}

/**
 * The fields one getAll returns: of a user, its devices and the preferences the message in
 * `conversation` can depend on (preferences/read.ts), never the user's other conversation settings
 * (up to 2,000); of a certificate, all of its fields. One mask serves both: each kind lacks the other's.
 */
export function readMask(conversation: string): Array<string | FieldPath> {
  return [...recipientFieldMask(conversation), ...CERTIFICATE_FIELDS];
}

/** One getAll: the users, then the recent certificates when `withCertificates`. */
async function readCall(uids: string[], withCertificates: boolean, conversation: string): Promise<CallResult> {
  const certificateIds = withCertificates ? [...recentCertificates] : [];
  const users = db().collection(USERS);
  const readAt = Date.now();
  const snaps = await db().getAll(...uids.map((uid) => users.doc(uid)), ...certificateIds.map(certRef), { fieldMask: readMask(conversation) });
  return { users: snaps.slice(0, uids.length), certificateIds, certificates: snaps.slice(uids.length), readAt };
}

/** A batch's read: `users`, and the certificates decoded for it alone (the batch adds to its maps). */
function batchRead(users: DocumentSnapshot[], call: CallResult, kek: () => Buffer): RecipientRead {
  return { users, certificates: credentialsFromSnapshots(call.certificates, kek), certificatesRead: new Set(call.certificateIds), readAt: call.readAt };
}

/** A batch's recipients on its own: calls of at most MAX_RECIPIENTS_PER_READ, in parallel, the first with the certificates. */
export async function readRecipients(uids: string[], kek: () => Buffer, cost: CostCounter, conversation: string): Promise<RecipientRead> {
  const chunks: string[][] = [];
  for (let i = 0; i < uids.length; i += MAX_RECIPIENTS_PER_READ) chunks.push(uids.slice(i, i + MAX_RECIPIENTS_PER_READ));
  cost.firestoreReads += chunks.length;
  const calls = await Promise.all(chunks.map((chunk, i) => readCall(chunk, i === 0, conversation)));
  const [first] = calls;
  if (!first) return { users: [], certificates: { credentials: new Map(), unreadable: new Map() }, certificatesRead: new Set(), readAt: Date.now() };
  return { ...batchRead(calls.flatMap((c) => c.users), first, kek), readAt: Math.min(...calls.map((c) => c.readAt)) };
}

interface GroupCall {
  /** Batch indexes whose recipients this call reads, in order. */
  batches: number[];
  started: Promise<void> | null;
}

/**
 * The reads of the batches one invocation processes together. Each batch asks for its own
 * recipients (`read`); the first batch of a call to ask starts it, and counts it in its cost.
 * A batch's snapshots are handed over once and not kept: the group holds no read longer than the
 * batch that needs it.
 */
export class GroupReads {
  private readonly calls: GroupCall[] = [];
  private readonly callOf = new Map<number, GroupCall>();
  private readonly results = new Map<number, RecipientRead>();

  /** `planned[i]`: the recipients batch i will ask for (recipientsToRead). */
  constructor(
    private readonly planned: string[][],
    private readonly kek: () => Buffer,
  ) {
    let call: GroupCall | null = null;
    let size = 0;
    planned.forEach((uids, index) => {
      // An empty batch reads nothing; one larger than a call reads on its own, in chunks.
      if (uids.length === 0 || uids.length > MAX_RECIPIENTS_PER_READ) return;
      if (!call || size + uids.length > MAX_RECIPIENTS_PER_READ) {
        call = { batches: [], started: null };
        size = 0;
        this.calls.push(call);
      }
      call.batches.push(index);
      size += uids.length;
      this.callOf.set(index, call);
    });
  }

  /**
   * Batch `index`'s recipients, or null when it asks for others than planned (it reads on its own).
   * The batches of a group belong to one event, so to one conversation: the first to ask sets the mask.
   */
  read(index: number, uids: string[], cost: CostCounter, conversation: string): Promise<RecipientRead> | null {
    const call = this.callOf.get(index);
    const planned = this.planned[index];
    if (!call || !planned || planned.length !== uids.length || planned.some((uid, i) => uid !== uids[i])) return null;
    if (!call.started) {
      cost.firestoreReads++;
      call.started = this.run(call, conversation);
    }
    return call.started.then(() => this.take(index));
  }

  private take(index: number): RecipientRead {
    const result = this.results.get(index);
    if (!result) throw new Error(`recipients of batch ${index} were already handed over`);
    this.results.delete(index);
    return result;
  }

  private async run(call: GroupCall, conversation: string): Promise<void> {
    const lists = call.batches.map((i) => this.planned[i] ?? []);
    const read = await readCall(lists.flat(), true, conversation);
    let offset = 0;
    call.batches.forEach((batchIndex, k) => {
      const n = lists[k]?.length ?? 0;
      this.results.set(batchIndex, batchRead(read.users.slice(offset, offset + n), read, this.kek));
      offset += n;
    });
  }
}

/** The devices the recipients have now (one getAll, no certificates); a recipient whose record does not parse has none. */
export async function deviceIdsOf(uids: string[], cost: CostCounter): Promise<Array<{ uid: string; deviceId: string }>> {
  cost.firestoreReads++;
  const snaps = await db().getAll(...uids.map((uid) => db().collection(USERS).doc(uid)), { fieldMask: ["devices"] });
  return snaps.flatMap((snap) => {
    try {
      return Object.values(parseUserDevices(snap.exists ? snap.data() : undefined)).map((d) => ({ uid: snap.id, deviceId: d.deviceId }));
    } catch {
      return [];
    }
  });
}

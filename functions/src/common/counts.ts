// Counts keyed by strings that come from outside (an FCM or OAuth error code, an error status).
// A plain object would answer "constructor" or "toString" with Object.prototype's members and
// swallow "__proto__"; an object without a prototype has only the keys put in it.

/** An empty map of counts with no prototype: any string is a key like any other. */
export function emptyCounts(): Record<string, number> {
  return Object.create(null) as Record<string, number>;
}

/** Adds `by` to `key`'s count. */
export function addCount(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

// Bounds checked on the raw input before a schema walks it. A schema parses an array element by
// element and copies every key of a loose object, so an input's cost grows with its size; a length
// compared, or a size measured only up to its bound, costs the same for 500,000 entries as for
// 5. The guard still answers like the schema would: an issue naming the field and what is wrong.
import { z } from "zod";

/**
 * The size of `value` as compact JSON, in UTF-8 bytes (string escapes not counted), measured only
 * up to `limit`: once past it, `limit + 1` is returned without looking further. Iterative, so no
 * nesting depth can overflow the stack.
 */
export function jsonBytesUpTo(value: unknown, limit: number): number {
  const over = limit + 1;
  let total = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === "string") {
      // A UTF-8 string has at least as many bytes as UTF-16 units: a long one is over without counting.
      total += v.length > limit ? over : Buffer.byteLength(v, "utf8") + 2;
    } else if (typeof v === "number") {
      total += String(v).length;
    } else if (typeof v === "boolean") {
      total += v ? 4 : 5;
    } else if (v === null) {
      total += 4;
    } else if (Array.isArray(v)) {
      // Brackets and commas; every element is at least one byte more, so a long array is over at once.
      total += v.length === 0 ? 2 : v.length + 1;
      if (total + v.length > limit) return over;
      for (const item of v) stack.push(item);
    } else if (typeof v === "object") {
      total += 2;
      let keys = 0;
      for (const key in v) {
        if (!Object.hasOwn(v, key)) continue;
        // "key": plus a comma between members.
        total += Buffer.byteLength(key, "utf8") + 3 + (keys++ > 0 ? 1 : 0);
        if (total > limit) return over;
        stack.push((v as Record<string, unknown>)[key]);
      }
    }
    if (total > limit) return over;
  }
  return total;
}

/**
 * `schema`, preceded by a cheap check of the raw value (`check` returns what is wrong, or null).
 * When the check fails the schema never runs, and the issue is the field's own.
 */
export function guarded<S extends z.ZodType>(check: (value: unknown) => string | null, schema: S) {
  return z
    .unknown()
    .superRefine((value, ctx) => {
      const problem = check(value);
      if (problem !== null) ctx.addIssue({ code: "custom", message: problem });
    })
    .pipe(schema);
}

/** A list longer than `max`, said in the field's words ("has more than 500 accounts"). */
export const longerThan =
  (max: number, what: string) =>
  (value: unknown): string | null =>
    Array.isArray(value) && value.length > max ? `has more than ${max} ${what}` : null;

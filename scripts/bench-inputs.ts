// The inputs figure of `npm run bench` (alone: `npm run bench -- inputs`): how long a
// 500,000-entry sendMessage takes to be refused, beside a request of the same size that any code
// refuses by one length comparison (its body is too long). The floor is what the HTTP layers cost
// to receive and parse 6.9 MB on this machine before any function code runs; a ratio near 1 says
// the refusal reads no element. Figures, not assertions: that no element is read is proven in
// test/fanout/bounds.test.ts.
import { callOk, callSerialized, createUser } from "../test/helpers/emulators.ts";

const ROUNDS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export async function benchInputs(): Promise<string> {
  const alice = await createUser();
  // A warm instance first: the timings are the requests' own.
  await callOk("sendMessage", { to: "nobody-warm-up", body: "warm-up" }, alice);
  const huge = JSON.stringify({ data: { to: Array.from({ length: 500_000 }, (_, i) => `user-${i}`), body: "to everyone" } });
  const floor = JSON.stringify({ data: { to: "bob", body: "x".repeat(huge.length - 40) } });
  const timed = async (body: string, field: string): Promise<number> => {
    const started = performance.now();
    const res = await callSerialized("sendMessage", body, alice);
    const ms = performance.now() - started;
    if (res.error?.status !== "INVALID_ARGUMENT" || res.error.details?.field !== field) throw new Error(`expected INVALID_ARGUMENT on ${field}, got ${JSON.stringify(res.error ?? res.result)}`);
    return ms;
  };
  const floorMs: number[] = [];
  const hugeMs: number[] = [];
  // Alternated, so that a noisy moment on a shared machine weighs on both.
  for (let i = 0; i < ROUNDS; i++) {
    floorMs.push(await timed(floor, "body"));
    hugeMs.push(await timed(huge, "to"));
  }
  const f = median(floorMs);
  const h = median(hugeMs);
  return [
    `inputs: sendMessage refused before it reads an element (median of ${ROUNDS}, ${(huge.length / 1e6).toFixed(1)} MB requests)`,
    `  to: 500,000 accounts          ${Math.round(h)} ms`,
    `  body as large (length check)  ${Math.round(f)} ms   (the floor: receiving and parsing the request)`,
    `  ratio                         ${(h / f).toFixed(2)}x`,
    "",
  ].join("\n");
}

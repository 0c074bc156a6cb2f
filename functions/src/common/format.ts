// How every text an operator reads says a duration, a latency and a count: the functions'
// sentences, the CLI and the console share this one module (it imports nothing, so the console's
// bundle can take it), so a table agrees with the sentence beside it.

/** "45 s", "3 min", "2 h 5 min", "31 days". */
export function formatDuration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 120) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 120) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  return `${Math.floor(h / 24)} days`;
}

/** "71 ms" below a second, "1.4 s" below a minute, then as a duration ("2 min"). */
export function formatLatency(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return formatDuration(ms);
}

/** "1 device", "2 devices": `plural` when the word does not just take an "s". */
export function counted(n: number, word: string, plural = `${word}s`): string {
  return `${n} ${n === 1 ? word : plural}`;
}

// Where OFFLINE_PUSH_PORT_OFFSET puts an emulator: its firebase.json port plus the offset, unless
// that lands on a port fetch() and browsers refuse to connect to (the WHATWG Fetch standard's
// "bad ports": Firestore's 8080 + 2000 = 10080, Hosting's 5000 + 1000 = 6000). Nothing could reach
// an emulator there (not the tests, the console or the Firebase SDKs), so it moves 10,000 further
// (down, when that would pass 65535). Used by scripts/emulators.mjs and the CLI, so both agree.
export const BLOCKED_PORTS = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512,
  513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679,
  6697, 10080,
]);

/** `port` moved by `offset`, then off a blocked port. */
export function shiftedPort(port, offset) {
  const shifted = port + offset;
  if (!BLOCKED_PORTS.has(shifted)) return shifted;
  return shifted + 10_000 <= 65_535 ? shifted + 10_000 : shifted - 10_000;
}

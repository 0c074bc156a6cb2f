// One error type for everything the CLI reports: a message a person can act on, a stable code for
// scripts (--json), and the exit code.
export type ErrorCode = "usage" | "unreachable" | "auth" | "remote" | "timeout" | "not-found" | "error" | (string & {});

export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly code: ErrorCode = "error",
    readonly details?: unknown,
  ) {
    super(message);
  }

  /** 2 for a command used wrongly (nothing was attempted), 1 for everything else. */
  get exitCode(): number {
    return this.code === "usage" ? 2 : 1;
  }
}

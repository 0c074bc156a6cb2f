// What every command needs from the global options: the target and the output mode.
import type { Command } from "commander";
import { describeTarget, resolveTarget, type GlobalOptions, type Target } from "./target.ts";

export class Context {
  private resolved: Target | undefined;

  constructor(private readonly program: Command) {}

  private get options(): GlobalOptions {
    return this.program.opts<GlobalOptions>();
  }

  get json(): boolean {
    return this.options.json === true;
  }

  target(): Target {
    this.resolved ??= resolveTarget(this.options);
    return this.resolved;
  }

  describe(): string {
    return describeTarget(this.target());
  }
}

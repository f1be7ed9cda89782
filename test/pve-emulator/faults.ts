/** Fault injection: latency, 5xx answers, dropped connections, failing tasks, lock timeouts. */
import type { FaultOptions } from "./options.js";
import { NO_FAULTS } from "./options.js";

const REASONS: Record<number, string> = {
  500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 595: "Connection refused",
  596: "Connection timed out", 597: "Broken pipe", 598: "Connection reset by peer", 599: "Connection closed",
};

export class Faults {
  private current: FaultOptions;
  constructor(initial: Partial<FaultOptions> = {}, private readonly random: () => number = Math.random) {
    this.current = { ...NO_FAULTS, ...initial };
  }

  get options(): FaultOptions {
    return { ...this.current };
  }

  /** Merges into the current faults; `reset` first returns to none. */
  set(faults: Partial<FaultOptions>, reset = false): void {
    this.current = { ...(reset ? NO_FAULTS : this.current), ...faults };
  }

  private roll(rate: number): boolean {
    return rate >= 1 || (rate > 0 && this.random() < rate);
  }

  shouldDrop(): boolean {
    return this.roll(this.current.dropRate);
  }

  /** The [status, reason] of an injected error answer, if this request gets one. */
  injectedError(): [number, string] | undefined {
    if (!this.roll(this.current.errorRate)) return undefined;
    const s = this.current.errorStatus;
    return [s, REASONS[s] ?? "Internal Server Error"];
  }

  taskFails(): boolean {
    return this.roll(this.current.taskFailRate);
  }

  lockTimesOut(): boolean {
    return this.roll(this.current.lockTimeoutRate);
  }

  get latencyMs(): number {
    return this.current.latencyMs;
  }
}

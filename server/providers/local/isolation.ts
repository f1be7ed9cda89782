/**
 * The periodic isolation check of the local runtime: every few seconds (and
 * for a create, unless a look within the last second found all well) it
 * re-reads the host's addresses and resolvers, checks that the instance's
 * nftables table is there and complete (firewall.verify),
 * that every sandbox's bridge port is still isolated, and, in turn, the
 * guard tables of 4 sandboxes (rewriting any found missing or
 * changed, which only root on the host can do). When something is
 * missing it logs an error, reports unhealthy (creates are refused with
 * UNAVAILABLE, grpc.health says NOT_SERVING), restores what is missing from
 * the runtime's state (the whole table, every sandbox's elements) and reports
 * healthy again once the next look finds everything in place.
 *
 * Meanwhile the sandboxes stay isolated: their own guard tables and the
 * bridge's port isolation do not depend on the host table (firewall.ts).
 */
import type { Firewall } from "./firewall.js";
import type { Network } from "./network.js";
import type { Logger } from "./options.js";

/** Guards looked at per check, in turn (each is one nft run inside a namespace, a few ms of CPU). */
const GUARDS_PER_CHECK = 4;
/**
 * A create trusts a look at the host table this recent instead of taking
 * its own (one nft run, ~8 ms of CPU that back-to-back creates would each
 * pay). A table deleted within that window is still noticed by the periodic
 * check; the new sandbox is cut off meanwhile by its own guard and its
 * isolated bridge port, which do not depend on the host table.
 */
const HOST_LOOK_FRESH_MS = 1000;

export interface CheckResult {
  /** What the check found wrong, if anything (it has been restored if `healthy`). */
  problem?: string;
  /** Whether isolation is complete after the check. */
  healthy: boolean;
}

export class IsolationMonitor {
  private healthyNow = true;
  private readonly listeners = new Set<(healthy: boolean) => void>();
  private timer?: NodeJS.Timeout;
  private current?: Promise<CheckResult>;
  /** When a look last found the host table complete (performance.now()). */
  private hostGoodAt = -Infinity;

  constructor(
    private readonly deps: {
      firewall: Firewall;
      network: Network;
      /** Ids of the sandboxes whose ports must be isolated. */
      sandboxIds: () => string[];
      log: Logger;
      intervalMs: number;
    },
  ) {}

  get healthy(): boolean {
    return this.healthyNow;
  }

  /** Calls `listener` with every change of health; returns the unsubscribe. */
  subscribe(listener: (healthy: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    this.timer ??= setInterval(() => void this.check().catch(() => {}), this.deps.intervalMs);
    this.timer.unref();
  }

  /** No more checks; resolves once a check under way is over (it may be restoring the table). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.current?.catch(() => {});
  }

  /**
   * One check now; a caller arriving while one runs shares its result.
   * "host" looks at the host table only (one nft run: what a create waits
   * for); "all" also at the bridge ports and a round of guards.
   */
  check(scope: "all" | "host" = "all"): Promise<CheckResult> {
    this.current ??= this.run(scope).finally(() => (this.current = undefined));
    return this.current;
  }

  /**
   * What a create waits for: one look at the host table (not queued behind
   * a periodic check's guards); only when something is wrong, the full
   * restore path.
   */
  async checkHost(): Promise<CheckResult> {
    if (this.healthyNow && !this.current) {
      if (performance.now() - this.hostGoodAt < HOST_LOOK_FRESH_MS) return { healthy: true };
      const started = performance.now();
      if ((await this.deps.firewall.verify()) === undefined) {
        this.hostGoodAt = started;
        return { healthy: true };
      }
    }
    return this.check("host");
  }

  private set(healthy: boolean): void {
    if (this.healthyNow === healthy) return;
    this.healthyNow = healthy;
    for (const l of [...this.listeners]) {
      try {
        l(healthy);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  private async run(scope: "all" | "host"): Promise<CheckResult> {
    const result = await this.inspectAndRestore(scope);
    // After the inspection, so a rewrite for new addresses never hides a deleted table.
    try {
      if (await this.deps.firewall.refreshFacts()) {
        this.deps.log.warn({ facts: this.deps.firewall.hostFacts }, "the host's addresses or resolvers changed: firewall rewritten");
      }
    } catch (err) {
      this.deps.log.error({ err }, "cannot apply the host's current addresses and resolvers to the firewall");
    }
    return result;
  }

  private async inspectAndRestore(scope: "all" | "host"): Promise<CheckResult> {
    const { firewall, network, log } = this.deps;
    let problem: string | undefined;
    let hostProblem: string | undefined;
    const started = performance.now();
    try {
      hostProblem = await firewall.verify();
      if (!hostProblem) this.hostGoodAt = started;
      const parts = [hostProblem];
      if (scope === "all") {
        const fixed = await network.ensurePortsIsolated(this.deps.sandboxIds());
        if (fixed.length) parts.push(`bridge ports no longer isolated: ${fixed.join(", ")} (isolated again)`);
        const guards = await firewall.checkGuards(GUARDS_PER_CHECK);
        if (guards.length) parts.push(`guard tables of ${guards.join(", ")} missing or changed (rewritten)`);
      }
      problem = parts.filter(Boolean).join("; ") || undefined;
    } catch (err) {
      problem = hostProblem = `cannot check the firewall: ${(err as Error).message}`;
    }
    if (!problem) {
      if (!this.healthyNow) log.warn({}, "sandbox isolation is complete again: creates accepted, health SERVING");
      this.set(true);
      return { healthy: true };
    }
    log.error(
      { problem, table: firewall.table },
      "SANDBOX ISOLATION BROKEN: the firewall was changed outside sandboxd; restoring it. Until then creates are refused and health is NOT_SERVING (sandboxes stay cut off by the layer that remains)",
    );
    this.set(false);
    this.hostGoodAt = -Infinity;
    try {
      // Ports and guards are fixed already; the host table is rewritten whole.
      if (hostProblem) await firewall.install();
      const after = await firewall.verify();
      if (after) throw new Error(after);
    } catch (err) {
      log.error({ err, table: firewall.table }, "SANDBOX ISOLATION BROKEN: restoring the host firewall failed; retrying at the next check");
      return { problem, healthy: false };
    }
    log.warn({ problem, table: firewall.table }, "sandbox isolation restored from sandboxd's state");
    this.set(true);
    return { problem, healthy: true };
  }
}

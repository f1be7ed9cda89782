/**
 * The reaper: every interval it renews the leases that are due (pinned by an
 * RPC, or holding a renewal the store missed during an outage) and reaps the
 * expired ones. Before destroying it re-reads the stored lease, because
 * another replica may have renewed it (then the sandbox lives on) or already
 * destroyed the sandbox (then it is just forgotten): reaping is idempotent
 * across replicas. A failed destroy is logged and retried, with backoff up to
 * 30 s, until the sandbox is gone.
 */
import type { Logger } from "../providers/local/options.js";
import type { Lease, LeaseTable } from "./lease-table.js";
import { leases as metrics } from "../telemetry/metrics.js";

export interface ReapActions {
  /** Destroys the sandbox (idempotent); `why` goes to the log. */
  destroy(sandboxId: string, why: string): Promise<void>;
  /** The sandbox is gone (destroyed elsewhere): drop what this replica holds for it. */
  forget(sandboxId: string): void;
  logger: Logger;
}

export class LeaseReaper {  /** Per sandbox: failed attempts so far and when the next may start. */
  private readonly failures = new Map<string, { count: number; retryAt: number }>();

  constructor(
    private readonly table: LeaseTable,
    private readonly actions: ReapActions,
    private readonly intervalMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /** One pass; run it with a Periodic (passes must not overlap). `intervalMs` is its interval, for the backoff. */
  async pass(): Promise<void> {
    const renewals = this.table.renewalsDue().map((l) =>
      this.table.renew(l.sandboxId).catch((err) =>
        this.actions.logger.warn({ sandboxId: l.sandboxId, err: String(err) }, "storing a due lease renewal failed; retrying"),
      ),
    );
    const now = this.now();
    const due = this.table.expired().filter((l) => (this.failures.get(l.sandboxId)?.retryAt ?? 0) <= now);
    await Promise.all([...renewals, ...due.map((l) => this.reap(l))]);
  }

  private async reap(lease: Lease): Promise<void> {
    const id = lease.sandboxId;
    try {
      const state = await this.table.refresh(id);
      if (state === "gone") {
        this.failures.delete(id);
        this.actions.forget(id);
        this.actions.logger.info({ sandboxId: id }, "sandbox of an expired lease is gone already (another replica reaped it)");
        return;
      }
      if (state === "live" || !this.table.isExpired(lease)) return;
      const ago = this.now() - lease.expiresAt;
      await this.actions.destroy(id, `lease expired ${ago} ms ago (ttl ${lease.ttlMs} ms, no RPC in flight, not renewed by any replica)`);
      metrics.reaps.inc();
      metrics.reapLateness.observe((this.now() - lease.expiresAt) / 1000);
      this.failures.delete(id);
    } catch (err) {
      metrics.reapFailures.inc();
      const count = (this.failures.get(id)?.count ?? 0) + 1;
      const waitMs = Math.min(30_000, this.intervalMs * 2 ** (count - 1));
      this.failures.set(id, { count, retryAt: this.now() + waitMs });
      this.actions.logger.error({ sandboxId: id, err: String(err), attempt: count, retryInMs: waitMs }, "reaping an expired sandbox failed; will retry");
    }
  }
}

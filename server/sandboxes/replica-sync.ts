/**
 * Keeps a replica's view in step with the provider, which other replicas
 * change too: every interval it lists the sandbox ids (cheap: see
 * SandboxProvider.listIds), adopts ids it does not know with their stored
 * lease, forgets ids that are gone (another replica destroyed them), and
 * fetches a fresh handle for sandboxes that had no address yet. Leases are
 * not read here: the reaper re-reads a lease only when it looks expired.
 */
import type { Logger } from "../providers/local/options.js";
import type { SandboxHandle, SandboxProvider } from "../providers/provider.js";
import { leases as metrics } from "../telemetry/metrics.js";

export interface SyncDeps {
  provider: SandboxProvider;
  known(): string[];
  /** Creating or destroying on this replica: leave it to that operation. */
  busy(id: string): boolean;
  adopt(handle: SandboxHandle): void;
  forget(id: string): void;
  needsRefresh(id: string): boolean;
  refresh(handle: SandboxHandle | undefined): Promise<void>;
  logger: Logger;
}

export class ReplicaSync {
  constructor(private readonly d: SyncDeps) {}

  /** One pass; run it with a Periodic (passes must not overlap). */
  async pass(): Promise<void> {
    try {
      const ids = new Set(await this.d.provider.listIds());
      const known = this.d.known();
      for (const id of known) {
        if (!ids.has(id) && !this.d.busy(id)) {
          this.d.logger.info({ sandboxId: id }, "sandbox gone from the provider (destroyed by another replica); forgotten");
          this.d.forget(id);
        }
      }
      const knownSet = new Set(known);
      await Promise.all([...ids].map(async (id) => {
        if (knownSet.has(id) && !this.d.needsRefresh(id)) return;
        const handle = await this.d.provider.get(id);
        if (!knownSet.has(id)) {
          if (handle && (handle.state === "running" || handle.state === "stopped")) this.d.adopt(handle);
        } else {
          await this.d.refresh(handle);
        }
      }));
      metrics.syncRuns.inc({ result: "ok" });
    } catch (err) {
      metrics.syncRuns.inc({ result: "error" });
      this.d.logger.warn({ err: String(err) }, "sync with the provider failed; next interval retries");
    }
  }
}

/**
 * SandboxManager: what the API handlers call. It combines the provider
 * (control plane), the SSH SessionRegistry (data plane) and the lease table,
 * and owns the in-memory view of each sandbox (labels, lease, creation time,
 * request ids).
 */
import { failedPrecondition, invalidArgument, isSandboxError, notFound } from "../errors.js";
import { LeaseReaper, LeaseTable, type Lease } from "../leases/lease-table.js";
import type { Logger } from "../providers/local/options.js";
import type { SandboxHandle, SandboxProvider, SandboxState } from "../providers/provider.js";
import type { SessionRegistry } from "../ssh/index.js";
import { listPage } from "./listing.js";
import { RequestIds } from "./request-ids.js";
import type { CreateRequest, ListPage, ListRequest, Resources, SandboxView } from "./types.js";

export interface ManagerOptions {
  provider: SandboxProvider;
  registry: SessionRegistry;
  lease: { defaultTtlMs: number; maxTtlMs: number; reapIntervalMs: number };
  defaults: Resources;
  logger: Logger;
}

interface Entry {
  handle: SandboxHandle;
  state: SandboxState;
  internet: boolean;
  destroying?: Promise<void>;
}

export class SandboxManager {
  readonly leases = new LeaseTable();
  private readonly entries = new Map<string, Entry>();
  private readonly requestIds = new RequestIds();
  private readonly reaper: LeaseReaper;
  /** Aborts creates still running at shutdown (they are not tied to one RPC, see RequestIds). */
  private readonly shutdown = new AbortController();

  constructor(private readonly o: ManagerOptions) {
    this.reaper = new LeaseReaper(this.leases, (l) => this.reap(l), o.lease.reapIntervalMs);
  }

  get providerName(): string {
    return this.o.provider.name;
  }

  /**
   * Starts the provider and adopts the sandboxes it already runs. Leases are
   * in memory for now, so adopted sandboxes get a fresh default lease (a later
   * issue persists leases in the provider and recovers them instead).
   */
  async start(): Promise<void> {
    await this.o.provider.start();
    for (const handle of await this.o.provider.list()) {
      this.track(handle, this.o.lease.defaultTtlMs);
      this.o.logger.info({ sandboxId: handle.id }, "adopted sandbox with a fresh default lease");
    }
    this.reaper.start();
  }

  async create(req: CreateRequest, signal?: AbortSignal): Promise<SandboxView> {
    const ttl = req.leaseTtlMs ?? this.o.lease.defaultTtlMs;
    if (ttl <= 0) throw invalidArgument("lease_ttl", "must be positive");
    if (ttl > this.o.lease.maxTtlMs) throw invalidArgument("lease_ttl", `at most ${this.o.lease.maxTtlMs / 1000} s`);
    const d = this.o.defaults;
    const spec = {
      cores: req.resources.cores || d.cores,
      memoryMiB: req.resources.memoryMiB || d.memoryMiB,
      diskGiB: req.resources.diskGiB || d.diskGiB,
      internet: req.internet,
      labels: req.labels,
    };
    const make = async () => {
      const handle = await this.o.provider.create(spec, { signal: this.shutdown.signal });
      this.track(handle, ttl);
      return handle.id;
    };
    if (!req.requestId) return this.get(await make());
    const fingerprint = JSON.stringify([spec.cores, spec.memoryMiB, spec.diskGiB, spec.internet, ttl, Object.entries(spec.labels).sort()]);
    return this.get(await this.requestIds.run(req.requestId, fingerprint, make, signal));
  }

  get(id: string): SandboxView {
    const e = this.entries.get(id);
    if (!e) throw notFound(`sandbox ${JSON.stringify(id)} not found`);
    return this.view(e);
  }

  list(req: ListRequest): ListPage {
    return listPage([...this.entries.values()].map((e) => this.view(e)), req);
  }

  /** Idempotent: an unknown id is still handed to the provider, which may hold a leftover. */
  async destroy(id: string, why = "requested"): Promise<void> {
    const e = this.entries.get(id);
    if (!e) {
      await this.o.provider.destroy(id).catch((err) => {
        if (!isSandboxError(err, "invalid_argument") && !isSandboxError(err, "not_found")) throw err;
      });
      return;
    }
    e.destroying ??= (async () => {
      e.state = "destroying";
      this.leases.delete(id);
      this.o.logger.info({ sandboxId: id, why }, "destroying sandbox");
      // Close SSH first: running commands and transfers end now rather than with the jail.
      await this.o.registry.close(id);
      await this.o.provider.destroy(id);
      this.entries.delete(id);
      this.requestIds.forgetSandbox(id);
    })().catch((err) => {
      e.destroying = undefined; // let a retry try again
      throw err;
    });
    await e.destroying;
  }

  keepAlive(id: string, ttlMs?: number): Date {
    this.get(id);
    if (ttlMs !== undefined && ttlMs <= 0) throw invalidArgument("lease_ttl", "must be positive");
    if (ttlMs !== undefined && ttlMs > this.o.lease.maxTtlMs) throw invalidArgument("lease_ttl", `at most ${this.o.lease.maxTtlMs / 1000} s`);
    const lease = this.leases.renew(id, ttlMs);
    if (!lease) throw failedPrecondition(`sandbox ${id} is being destroyed`);
    return new Date(lease.expiresAt);
  }

  async setInternet(id: string, enabled: boolean): Promise<SandboxView> {
    const e = this.running(id);
    await this.o.provider.setInternet(id, enabled);
    e.internet = enabled;
    return this.view(e);
  }

  /**
   * For Exec, Upload and Download: checks the sandbox runs and pins its lease
   * until the returned (idempotent) release is called.
   */
  use(id: string): () => void {
    this.running(id);
    return this.leases.pin(id);
  }

  /** Stops the reaper and in-flight creates, drops SSH connections, closes the provider; sandboxes stay. */
  async close(): Promise<void> {
    this.reaper.stop();
    this.shutdown.abort();
    await this.o.registry.closeAll();
    await this.o.provider.close();
  }

  private running(id: string): Entry {
    const e = this.entries.get(id);
    if (!e) throw notFound(`sandbox ${JSON.stringify(id)} not found`);
    if (e.state !== "running") throw failedPrecondition(`sandbox ${id} is ${e.state}, not running`);
    return e;
  }

  private track(handle: SandboxHandle, ttlMs: number): void {
    this.o.registry.register(handle.id, handle.ssh);
    this.entries.set(handle.id, { handle, state: handle.state, internet: handle.spec.internet });
    this.leases.create(handle.id, ttlMs);
  }

  private async reap(lease: Lease): Promise<void> {
    const expiredAgoMs = Date.now() - lease.expiresAt;
    await this.destroy(lease.sandboxId, `lease expired ${expiredAgoMs} ms ago (ttl ${lease.ttlMs} ms, no RPC in flight)`).catch((err) =>
      this.o.logger.error({ sandboxId: lease.sandboxId, err: String(err) }, "reaping an expired sandbox failed"),
    );
  }

  private view(e: Entry): SandboxView {
    const { handle } = e;
    const lease = this.leases.get(handle.id);
    return {
      id: handle.id,
      state: e.state,
      labels: handle.spec.labels,
      resources: { cores: handle.spec.cores, memoryMiB: handle.spec.memoryMiB, diskGiB: handle.spec.diskGiB },
      internet: e.internet,
      createdAt: handle.createdAt,
      leaseExpiresAt: new Date(lease?.expiresAt ?? Date.now()),
      provider: this.o.provider.name,
    };
  }
}

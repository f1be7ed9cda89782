/**
 * SandboxManager: what the API handlers call. It combines the provider
 * (control plane, and the store of leases), the SSH SessionRegistry (data
 * plane) and the lease table, and owns this replica's view of each sandbox.
 *
 * Several replicas may serve one provider (Proxmox): each knows a sandbox
 * from its own creates, from adoption at start, from a lookup when a request
 * names one it does not know, and from the periodic sync (ReplicaSync).
 */
import { DEFAULT_TENANT } from "../auth/principal.js";
import { createHash } from "node:crypto";
import { forgetHelper } from "../ssh/commands/helper.js";
import { failedPrecondition, invalidArgument, isSandboxError, notFound, unavailable, type SandboxError } from "../errors.js";
import { LeaseReaper } from "../leases/lease-reaper.js";
import { Periodic } from "../periodic.js";
import { LeaseTable } from "../leases/lease-table.js";
import type { Logger } from "../providers/local/options.js";
import { POOL_LABEL, type SandboxHandle, type SandboxProvider, type SandboxState, type StoredLease } from "../providers/provider.js";
import type { WarmPool } from "./warm-pool.js";
import type { SessionRegistry } from "../ssh/index.js";
import { listPage } from "./listing.js";
import { ReplicaSync } from "./replica-sync.js";
import { RequestIds } from "./request-ids.js";
import type { CreateRequest, ListPage, ListRequest, Resources, SandboxView } from "./types.js";
import { tidyAfterCrash } from "./recovery-tidy.js";
import { TenantQuotas } from "./quotas.js";
import { NO_QUOTAS, type QuotaConfig } from "../config/quotas.js";
import { sandboxes as metrics } from "../telemetry/metrics.js";
import { inSpan } from "../telemetry/tracing.js";

export interface ManagerOptions {
  provider: SandboxProvider;
  registry: SessionRegistry;
  lease: { defaultTtlMs: number; maxTtlMs: number; reapIntervalMs: number; syncIntervalMs: number };
  defaults: Resources;
  logger: Logger;
  /** Per-tenant quotas (server/sandboxes/quotas.ts); none when absent. */
  quotas?: QuotaConfig;
  /** Sandboxes made ahead, claimed by creates of their shape (server/sandboxes/warm-pool.ts). */
  pool?: WarmPool;
}

/** A warm pool member: never listed, counted or handed out as a sandbox until a claim makes it one. */
const isMember = (h: SandboxHandle) => h.spec.labels[POOL_LABEL] !== undefined;

interface Entry {
  handle: SandboxHandle;
  state: SandboxState;
  internet: boolean;
  egressAllow: string[];
  destroying?: Promise<void>;
  /** For sandboxes adopted from an earlier process: what its crash left (orphaned commands, upload temp files) goes before the first RPC. */
  tidy?: Promise<void>;
  adopted: boolean;
}

export class SandboxManager {
  readonly leases: LeaseTable;
  private readonly entries = new Map<string, Entry>();
  private readonly requestIds = new RequestIds();
  private readonly reaping: Periodic;
  private readonly syncing: Periodic;
  /** Aborts creates still running at shutdown (they are not tied to one RPC, see RequestIds). */
  private readonly shutdown = new AbortController();
  private readonly startedAt = Date.now();
  private readonly quotas: TenantQuotas;

  constructor(private readonly o: ManagerOptions) {
    this.leases = new LeaseTable(o.provider);
    const view = () => [...this.entries.values()].map((e) => e.handle).filter((h) => !isMember(h));
    this.quotas = new TenantQuotas({ config: o.quotas ?? NO_QUOTAS, provider: o.provider, view, logger: o.logger });
    const reaper = new LeaseReaper(this.leases, {
      destroy: (id, why) => this.destroy(id, why),
      forget: (id) => this.forget(id),
      logger: o.logger,
    }, o.lease.reapIntervalMs);
    this.reaping = new Periodic(() => reaper.pass(), o.lease.reapIntervalMs);
    const sync = new ReplicaSync({
      provider: o.provider,
      known: () => [...this.entries.keys(), ...(o.pool?.ids() ?? [])],
      busy: (id) => !["running", "stopped"].includes(this.entries.get(id)?.state ?? ""),
      adopt: (h) => this.adopt(h, "found by the periodic sync"),
      forget: (id) => this.forget(id),
      needsRefresh: (id) => this.entries.get(id)?.handle.address === "" || this.entries.get(id)?.state === "stopped",
      refresh: (h) => this.refreshHandle(h),
      logger: o.logger,
    });
    this.syncing = new Periodic(() => sync.pass(), o.lease.syncIntervalMs);
    o.registry.onUnreachable((id) => this.whyUnreachable(id));
  }

  get providerName(): string {
    return this.o.provider.name;
  }

  /**
   * Starts the provider and adopts every sandbox it holds with its stored
   * lease: live ones are usable at once, expired ones are reaped by the
   * reaper's first pass (which re-reads the lease first, in case another
   * replica renewed it). Sandboxes stored without a lease (older versions)
   * get the default TTL from now.
   */
  async start(): Promise<void> {
    await this.o.provider.start();
    for (const handle of await this.o.provider.list()) this.adopt(handle, "recovered at start");
    this.reaping.start();
    this.syncing.start();
    this.o.pool?.start();
  }

  async create(req: CreateRequest, signal?: AbortSignal): Promise<SandboxView> {
    const provider = this.o.provider.name;
    const started = performance.now();
    try {
      const view = await inSpan("sandbox.create", { "sandboxd.provider": provider }, () => this.createOnce(req, signal));
      metrics.createSeconds.observe({ provider }, (performance.now() - started) / 1000);
      return view;
    } catch (err) {
      metrics.createFailures.inc({ provider, cause: isSandboxError(err) ? err.kind : "internal" });
      throw err;
    }
  }

  private async createOnce(req: CreateRequest, signal?: AbortSignal): Promise<SandboxView> {
    const ttl = this.quotas.leaseTtl(req.tenant ?? DEFAULT_TENANT, this.checkTtl(req.leaseTtlMs), this.o.lease.defaultTtlMs);
    const d = this.o.defaults;
    const spec = {
      cores: req.resources.cores || d.cores,
      memoryMiB: req.resources.memoryMiB || d.memoryMiB,
      // A template's disk can only grow: the default is at least the provider's smallest.
      diskGiB: req.resources.diskGiB || Math.max(d.diskGiB, this.o.provider.minDiskGiB ?? 0),
      internet: req.internet,
      labels: req.labels,
      ...(req.tenant && req.tenant !== DEFAULT_TENANT ? { tenant: req.tenant } : {}),
    };
    // Hashed: it is stored with the sandbox (a Proxmox description holds 8 KiB).
    const fingerprint = createHash("sha256")
      .update(JSON.stringify([spec.cores, spec.memoryMiB, spec.diskGiB, spec.internet, ttl, Object.entries(spec.labels).sort(), ...(spec.tenant ? [spec.tenant] : [])]))
      .digest("base64url");
    const requestKey = spec.tenant ? `${spec.tenant}/${req.requestId}` : req.requestId;
    const make = async () => {
      // A lease is stored with the sandbox's first record, and so is the request id (a retry after a restart finds it).
      const lease = { expiresAt: Date.now() + ttl, ttlMs: ttl };
      // Request ids are per tenant: another tenant's id is another request.
      const request = req.requestId ? { id: requestKey, fingerprint } : undefined;
      // Another replica may have made (or be making) the sandbox for this request id.
      const earlier = request && (await this.o.provider.findByRequest?.(request.id, this.shutdown.signal));
      if (earlier) {
        if (earlier.request?.fingerprint !== fingerprint) throw invalidArgument("request_id", "was used before with different parameters");
        // A claim cut off (a crash) between its write and the internet setting: the retry finishes it.
        if (earlier.spec.internet !== spec.internet) await this.o.provider.setInternet(earlier.id, spec.internet);
        if (!this.entries.has(earlier.id)) this.adopt(earlier, "found by its request id (made by another replica)");
        return earlier.id;
      }
      // Within the tenant's quota (counted across replicas), or destroyed again and refused.
      const handle = await this.quotas.create(spec, {
        // A warm pool member of this shape if one is ready (the lease counts from the claim), else a cold create.
        create: async () => {
          const pool = this.o.pool;
          const cold = () => this.o.provider.create(spec, { signal: this.shutdown.signal, lease, request });
          if (!pool?.pools(spec)) return cold();
          const claimed = await pool.claim(spec, { labels: spec.labels, tenant: spec.tenant, internet: spec.internet, lease: { expiresAt: Date.now() + ttl, ttlMs: ttl }, request, createdAt: new Date() });
          return claimed ?? pool.cold(cold);
        },
        // The provider restarted the lease when the sandbox was ready (the TTL counts from then).
        track: (h) => this.track(h, h.lease ?? lease, false),
        undo: (id) => this.destroy(id, "over its tenant's quota"),
      });
      return handle.id;
    };
    if (!req.requestId) return this.get(await make());
    return this.get(await this.requestIds.run(requestKey, fingerprint, make, signal));
  }

  /** How many sandboxes this replica knows in each state (for metrics). */
  countByState(): Array<{ provider: string; state: string; count: number }> {
    const counts = new Map<string, number>();
    for (const e of this.entries.values()) counts.set(e.state, (counts.get(e.state) ?? 0) + 1);
    return [...counts].map(([state, count]) => ({ provider: this.o.provider.name, state, count }));
  }

  async get(id: string): Promise<SandboxView> {
    return this.view(await this.find(id));
  }

  list(req: ListRequest): ListPage {
    const views = [...this.entries.values()].filter((e) => !isMember(e.handle)).map((e) => this.view(e));
    return listPage(req.tenant === undefined ? views : views.filter((v) => v.tenant === req.tenant), req);
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
    const before = e.state;
    const provider = this.o.provider.name;
    e.destroying ??= inSpan("sandbox.destroy", { "sandboxd.provider": provider }, async () => {
      e.state = "destroying";
      this.o.logger.info({ sandboxId: id, why }, "destroying sandbox");
      // Close SSH first: running commands and transfers end now rather than with the jail.
      await this.o.registry.close(id);
      await this.o.provider.destroy(id);
      this.forget(id);
      metrics.destroys.inc({ provider, reason: destroyReason(why) });
    }).catch((err) => {
      metrics.destroyFailures.inc({ provider });
      e.destroying = undefined; // the lease stays: the reaper (or the caller) tries again
      e.state = before === "destroying" ? "running" : before;
      throw err;
    });
    await e.destroying;
  }

  async keepAlive(id: string, ttlMs?: number): Promise<Date> {
    this.checkTtl(ttlMs);
    const e = await this.find(id);
    this.quotas.checkRenewal(e.handle.spec.tenant ?? DEFAULT_TENANT, ttlMs);
    if (e.state === "destroying") throw failedPrecondition(`sandbox ${id} is being destroyed`);
    await this.live(e);
    const lease = await this.leases.renew(id, ttlMs).catch((err) => {
      throw isSandboxError(err) && !isSandboxError(err, "not_found") ? err : unavailable(`storing the lease of ${id}: ${String((err as Error)?.message ?? err)}`, err);
    });
    if (!lease) throw failedPrecondition(`sandbox ${id} is being destroyed`);
    return new Date(lease.expiresAt);
  }

  async setEgressAllowlist(id: string, entries: string[]): Promise<SandboxView> {
    if (entries.length > 64) throw invalidArgument("entries", `at most 64 entries, got ${entries.length}`);
    const e = this.running(await this.find(id));
    if (!this.o.provider.setEgressAllow) {
      throw failedPrecondition(`the ${this.o.provider.name} provider has no per-sandbox egress allowlist`);
    }
    e.egressAllow = await this.o.provider.setEgressAllow(id, entries);
    return this.view(e);
  }

  async setInternet(id: string, enabled: boolean): Promise<SandboxView> {
    const e = this.running(await this.find(id));
    await this.o.provider.setInternet(id, enabled);
    e.internet = enabled;
    return this.view(e);
  }

  /**
   * For Exec, Upload and Download: checks the sandbox runs with a live lease
   * and pins the lease until the returned (idempotent) release is called.
   */
  async use(id: string): Promise<() => void> {
    const e = this.running(await this.find(id));
    await this.live(e);
    if (!e.handle.address) await this.refreshHandle(await this.o.provider.get(id));
    const now = this.entries.get(id);
    if (now?.state === "stopped") throw stoppedError(id);
    if (!now?.handle.address) throw unavailable(`sandbox ${id} has no address yet`);
    const release = this.leases.pin(id, (err) => this.o.logger.warn({ sandboxId: id, err: String(err) }, "renewing the lease after an RPC failed; the reaper retries"));
    if (e.adopted) {
      e.tidy ??= tidyAfterCrash(this.o.registry, id, this.startedAt).catch((err) =>
        this.o.logger.warn({ sandboxId: id, err: String(err) }, "tidying up after a crash failed (orphaned commands, cut-off uploads)"));
      await e.tidy;
    }
    return release;
  }

  /** Stops the reaper, sync and in-flight creates, drops SSH connections, closes the provider; sandboxes stay. */
  async close(): Promise<void> {
    this.o.pool?.close();
    this.reaping.stop();
    this.syncing.stop();
    this.shutdown.abort();
    await this.o.registry.closeAll();
    await this.o.provider.close();
  }

  private checkTtl(ttlMs: number | undefined): number | undefined {
    if (ttlMs === undefined) return undefined;
    if (ttlMs <= 0) throw invalidArgument("lease_ttl", "must be positive");
    if (ttlMs > this.o.lease.maxTtlMs) throw invalidArgument("lease_ttl", `at most ${this.o.lease.maxTtlMs / 1000} s`);
    return ttlMs;
  }

  /** The entry, looking the id up in the provider when this replica does not know it (another replica made it). */
  private async find(id: string): Promise<Entry> {
    const known = this.entries.get(id);
    if (known) return known;
    const handle = await this.o.provider.get(id).catch((err) => {
      if (isSandboxError(err, "not_found") || isSandboxError(err, "invalid_argument")) return undefined;
      throw err;
    });
    if (handle && (handle.state === "running" || handle.state === "stopped")) this.adopt(handle, "looked up on request");
    const e = this.entries.get(id);
    if (!e) throw notFound(`sandbox ${JSON.stringify(id)} not found`);
    return e;
  }

  /** Refuses a sandbox whose lease ran out (after re-reading it: another replica may have renewed it). */
  private async live(e: Entry): Promise<void> {
    const lease = this.leases.get(e.handle.id);
    if (!lease) throw failedPrecondition(`sandbox ${e.handle.id} is being destroyed`);
    if (!this.leases.isExpired(lease)) return;
    const state = await this.leases.refresh(e.handle.id);
    if (state === "gone") {
      this.forget(e.handle.id);
      throw notFound(`sandbox ${JSON.stringify(e.handle.id)} not found`);
    }
    if (state === "expired") throw failedPrecondition(`the lease of sandbox ${e.handle.id} expired at ${new Date(lease.expiresAt).toISOString()}; it is being destroyed`);
  }

  private running(e: Entry): Entry {
    if (e.state !== "running") throw failedPrecondition(`sandbox ${e.handle.id} is ${e.state}, not running`);
    return e;
  }

  private adopt(handle: SandboxHandle, how: string): void {
    if (this.entries.has(handle.id)) return;
    // A member of one of our pool's shapes joins the pool; any other member is tracked (unlisted) until its lease runs out.
    if (isMember(handle) && this.o.pool?.adopt(handle)) return;
    const now = Date.now();
    let lease = handle.lease;
    if (!lease) {
      lease = { expiresAt: now + this.o.lease.defaultTtlMs, ttlMs: this.o.lease.defaultTtlMs };
      this.o.provider.extendLease(handle.id, lease).catch((err) => this.o.logger.warn({ sandboxId: handle.id, err: String(err) }, "storing a default lease failed"));
    }
    this.track(handle, lease, true);
    if (handle.request) this.requestIds.remember(handle.request.id, handle.request.fingerprint, handle.id);
    const expired = lease.expiresAt <= now;
    this.o.logger.info({ sandboxId: handle.id, how, leaseExpiresAt: new Date(lease.expiresAt).toISOString(), expired }, expired ? "adopted a sandbox whose lease ran out; reaping it" : "adopted a sandbox with a live lease");
  }

  private track(handle: SandboxHandle, lease: StoredLease, adopted: boolean): void {
    this.o.registry.register(handle.id, handle.ssh);
    this.entries.set(handle.id, { handle, state: handle.state, internet: handle.spec.internet, egressAllow: [...(handle.egressAllow ?? [])], adopted });
    this.leases.track(handle.id, lease);
  }

  /** SSH could not connect: a sandbox stopped outside sandboxd says so (FAILED_PRECONDITION) rather than UNAVAILABLE. */
  private async whyUnreachable(id: string): Promise<SandboxError | undefined> {
    if (!this.entries.has(id)) return undefined;
    await this.refreshHandle(await this.o.provider.get(id));
    return this.entries.get(id)?.state === "stopped" ? stoppedError(id) : undefined;
  }

  /** A fresher handle (address after a start, a stopped container) for a known sandbox. */
  private async refreshHandle(handle: SandboxHandle | undefined): Promise<void> {
    const e = handle && this.entries.get(handle.id);
    if (!e || e.destroying) return;
    // Stopped and started again outside sandboxd: follow the provider.
    if (handle.state === "stopped" || (handle.state === "running" && e.state === "stopped")) e.state = handle.state;
    if (!handle.address || handle.address === e.handle.address) return;
    e.handle = handle;
    this.o.registry.register(handle.id, handle.ssh);
  }

  /** Drops what this replica holds for a sandbox that is gone. */
  private forget(id: string): void {
    this.o.pool?.forget(id);
    forgetHelper(id);
    this.entries.delete(id);
    this.leases.delete(id);
    this.requestIds.forgetSandbox(id);
    void this.o.registry.close(id);
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
      egressAllowlist: [...e.egressAllow],
      createdAt: handle.createdAt,
      leaseExpiresAt: new Date(lease?.expiresAt ?? Date.now()),
      provider: this.o.provider.name,
      tenant: handle.spec.tenant ?? DEFAULT_TENANT,
    };
  }
}

const stoppedError = (id: string) =>
  failedPrecondition(`sandbox ${id} is stopped: its machine is not running (stopped outside sandboxd); destroy it and create another`);

/** A bounded label for why a sandbox was destroyed (the log has the full text). */
function destroyReason(why: string): string {
  if (why === "requested") return "requested";
  if (why.startsWith("lease expired")) return "lease_expired";
  if (why.includes("quota")) return "quota";
  return "other";
}

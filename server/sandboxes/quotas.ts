/**
 * Quotas per tenant (server/config/quotas.ts): sandboxes, cores, memory and
 * disk held at once, the longest lease, creates per minute. Over quota →
 * RESOURCE_EXHAUSTED naming the quota, its limit and the current use.
 *
 * What a tenant holds is derived from the provider's state, which every
 * replica shares (Proxmox: the pool, each container's description carrying
 * its tenant and spec), never from a counter of this process. Two replicas
 * racing for the last slot must not both admit; the protocol is "visible
 * first, then count":
 *
 *   1. pre-check against this replica's view plus its own creates in flight
 *      (a fast refusal, confirmed by a fresh count since the view may hold
 *      sandboxes others destroyed; within one replica the in-flight
 *      reservations mean a burst is never admitted past the quota, without
 *      serializing creates);
 *   2. make the sandbox: once made it is visible to every replica
 *      (SandboxProvider.listIds lists it: Proxmox tags a container last);
 *   3. count the tenant's sandboxes again from a fresh listing of the
 *      provider (listIds: one pool listing; a spec is read once per id, it
 *      never changes) — its own sandbox included. Within the quota: admitted.
 *
 * Every admitted sandbox was visible before its own count and stays visible
 * after, so the last admitted one to count saw all the others: at most the
 * quota is ever admitted, whatever the timing. Over the quota, racers give
 * way in the order they were made (createdAt, then id): one that is over even
 * counting only the sandboxes made before it is destroyed and refused at
 * once; one that would fit beside those waits for the others to give way,
 * re-counting (50 ms doubling to 1 s) until a give-up time that comes sooner
 * the later it was made (up to maxWaitMs), then is destroyed and refused. So
 * racers for the last slot do not all refuse each other; refusing more than
 * needed is possible (an earlier racer also waits on an already admitted one
 * made after it), admitting more never is. A count that fails (provider
 * unreachable) fails closed: the new sandbox is destroyed, UNAVAILABLE.
 *
 * Creates per minute are counted per replica (a sliding window in memory):
 * across N replicas a tenant may create up to N × the rate. The count and
 * size quotas, which are global, bound what that can hold.
 */
import { DEFAULT_TENANT } from "../auth/principal.js";
import { quotaOf, type QuotaConfig, type TenantQuota } from "../config/quotas.js";
import { resourceExhausted, unavailable, type SandboxError } from "../errors.js";
import type { Logger } from "../providers/local/options.js";
import { POOL_LABEL, type SandboxHandle, type SandboxProvider, type SandboxSpec } from "../providers/provider.js";
import { sleep } from "../sleep.js";

export interface Amounts {
  cores: number;
  memoryMiB: number;
  diskGiB: number;
}

/** One sandbox as quotas see it. */
export interface Usage extends Amounts {
  id: string;
  tenant: string;
  createdAt: number;
}

interface Reservation {
  tenant: string;
  amounts: Amounts;
  /** Set once made: from then on the view has it. */
  id?: string;
}

type Known = Pick<SandboxHandle, "id" | "spec" | "createdAt">;

export interface QuotaDeps {
  config: QuotaConfig;
  provider: Pick<SandboxProvider, "listIds" | "get">;
  /** The sandboxes this replica knows (its view). */
  view(): Iterable<Known>;
  logger: Logger;
  now?: () => number;
  /** How long a create racing others over the last slots may wait for them to give way. */
  maxWaitMs?: number;
}

/** The steps of a create, which the manager owns. */
export interface CreateSteps {
  create(): Promise<SandboxHandle>;
  /** Enters it in this replica's view (done in the same turn as the reservation is settled). */
  track(handle: SandboxHandle): void;
  /** Destroys a sandbox made over the quota. */
  undo(id: string): Promise<void>;
}

const SIZES = ["cores", "memoryMiB", "diskGiB"] as const;
const MINUTE = 60_000;

/** Why `asked` does not fit beside `inUse` under quota `q`, or undefined when it does. */
export function overQuota(tenant: string, q: TenantQuota, inUse: readonly Amounts[], asked: Amounts): string | undefined {
  if (q.sandboxes !== undefined && inUse.length + 1 > q.sandboxes) return `tenant ${tenant}: quota sandboxes=${q.sandboxes} reached (${inUse.length} in use)`;
  for (const k of SIZES) {
    const limit = q[k];
    if (limit === undefined) continue;
    const used = inUse.reduce((sum, u) => sum + u[k], 0);
    if (used + asked[k] > limit) return `tenant ${tenant}: quota ${k}=${limit} exceeded (${used} in use + ${asked[k]} asked)`;
  }
  return undefined;
}

/** "1h", "90m", "45s", "1500ms". */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [["h", 3600_000], ["m", MINUTE], ["s", 1000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

const tenantOf = (spec: SandboxSpec) => spec.tenant ?? DEFAULT_TENANT;
const usageOf = (h: Known): Usage => ({
  id: h.id, tenant: tenantOf(h.spec), cores: h.spec.cores, memoryMiB: h.spec.memoryMiB, diskGiB: h.spec.diskGiB, createdAt: h.createdAt.getTime(),
});
/** The order in which racers give way: made earlier first. */
const madeBefore = (a: Usage, b: Usage) => a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.id < b.id);

export class TenantQuotas {
  /** Creates of this replica between the pre-check and their admission. */
  private readonly inFlight = new Set<Reservation>();
  /** tenant → times of its recent creates on this replica. */
  private readonly recent = new Map<string, number[]>();
  /** Sandboxes of other replicas this one has counted (id → usage; a sandbox's tenant and size never change). */
  private readonly seen = new Map<string, Usage>();
  private readonly now: () => number;
  private readonly maxWaitMs: number;

  constructor(private readonly d: QuotaDeps) {
    this.now = d.now ?? Date.now;
    this.maxWaitMs = d.maxWaitMs ?? 4000;
  }

  /** The lease TTL of a create: `asked` (RESOURCE_EXHAUSTED above the tenant's maximum), or the default cut to that maximum. */
  leaseTtl(tenant: string, asked: number | undefined, defaultMs: number): number {
    const max = quotaOf(this.d.config, tenant).maxLeaseTtlMs;
    if (asked === undefined) return max === undefined ? defaultMs : Math.min(defaultMs, max);
    this.checkRenewal(tenant, asked);
    return asked;
  }

  /** A KeepAlive's TTL (undefined: the current one, admitted before). */
  checkRenewal(tenant: string, asked: number | undefined): void {
    const max = quotaOf(this.d.config, tenant).maxLeaseTtlMs;
    if (asked !== undefined && max !== undefined && asked > max) {
      throw resourceExhausted(`tenant ${tenant}: quota maxLeaseTtl=${formatDuration(max)} exceeded (lease_ttl ${formatDuration(asked)} asked)`);
    }
  }

  /** Makes the sandbox (steps) if the tenant's quota allows it, admitting it only after counting as above. */
  async create(spec: SandboxSpec, steps: CreateSteps): Promise<SandboxHandle> {
    const tenant = tenantOf(spec);
    const q = quotaOf(this.d.config, tenant);
    const counted = q.sandboxes !== undefined || SIZES.some((k) => q[k] !== undefined);
    this.checkRate(tenant, q);
    if (counted && overQuota(tenant, q, this.withInFlight(tenant, this.viewOf(tenant)), spec)) {
      // The view may be stale (another replica destroyed some): a fresh count decides.
      const fresh = await this.census(tenant).catch(() => undefined);
      const over = overQuota(tenant, q, this.withInFlight(tenant, fresh ?? this.viewOf(tenant)), spec);
      if (over) throw resourceExhausted(over);
    }
    this.checkRate(tenant, q); // again: the count above may have let others in
    const at = this.now();
    if (q.createsPerMinute !== undefined) this.recent.get(tenant)!.push(at);
    const reservation: Reservation = { tenant, amounts: { cores: spec.cores, memoryMiB: spec.memoryMiB, diskGiB: spec.diskGiB } };
    if (counted) this.inFlight.add(reservation);
    try {
      const handle = await steps.create().catch((err: unknown) => {
        // Nothing was made: it does not count as a create.
        const times = this.recent.get(tenant);
        if (times?.includes(at)) times.splice(times.indexOf(at), 1);
        throw err;
      });
      reservation.id = handle.id;
      steps.track(handle);
      if (!counted) return handle;
      const refusal = await this.confirm(tenant, q, usageOf(handle));
      if (!refusal) return handle;
      this.d.logger.info({ sandboxId: handle.id, tenant, why: refusal.message }, "a create went over its tenant's quota once counted with other replicas' sandboxes; destroying it");
      await steps.undo(handle.id).catch((err: unknown) =>
        this.d.logger.warn({ sandboxId: handle.id, tenant, err: String(err) }, "destroying a sandbox made over its tenant's quota failed; its lease reaps it"));
      throw refusal;
    } finally {
      this.inFlight.delete(reservation);
    }
  }

  /** Refuses when the tenant's window of recent creates on this replica is full. */
  private checkRate(tenant: string, q: TenantQuota): void {
    const limit = q.createsPerMinute;
    if (limit === undefined) return;
    const since = this.now() - MINUTE;
    const times = (this.recent.get(tenant) ?? []).filter((t) => t > since);
    this.recent.set(tenant, times);
    if (times.length >= limit) {
      throw resourceExhausted(`tenant ${tenant}: quota createsPerMinute=${limit} reached (${times.length} creates in the last minute)`);
    }
  }

  /** The tenant's sandboxes in this replica's view. */
  private viewOf(tenant: string): Usage[] {
    return [...this.d.view()].map(usageOf).filter((u) => u.tenant === tenant);
  }

  /** `held` plus this replica's creates in flight not in it yet. */
  private withInFlight(tenant: string, held: Usage[]): Amounts[] {
    const ids = new Set(held.map((u) => u.id));
    const out: Amounts[] = [...held];
    for (const r of this.inFlight) if (r.tenant === tenant && !(r.id && ids.has(r.id))) out.push(r.amounts);
    return out;
  }

  /** The tenant's sandboxes by a fresh listing of the provider. */
  private async census(tenant: string): Promise<Usage[]> {
    const ids = await this.d.provider.listIds();
    const present = new Set(ids);
    for (const id of this.seen.keys()) if (!present.has(id)) this.seen.delete(id);
    const view = new Map<string, Known>();
    for (const h of this.d.view()) view.set(h.id, h);
    const all = await Promise.all(ids.map(async (id) => {
      const known = view.get(id);
      if (known) return usageOf(known);
      let u = this.seen.get(id);
      if (!u) {
        const h = await this.d.provider.get(id);
        // Warm pool members count toward no tenant; not cached either, since a claim makes one a tenant's.
        if (!h || h.spec.labels[POOL_LABEL] !== undefined) return undefined;
        this.seen.set(id, (u = usageOf(h)));
      }
      return u;
    }));
    return all.filter((u): u is Usage => u !== undefined && u.tenant === tenant);
  }

  /** Counts until `me` is admitted (undefined) or must give way (the refusal). */
  private async confirm(tenant: string, q: TenantQuota, me: Usage): Promise<SandboxError | undefined> {
    const start = this.now();
    let refusal: SandboxError;
    for (let wait = 50; ; wait = Math.min(1000, wait * 2)) {
      let giveUpAt = start + this.maxWaitMs;
      try {
        const others = (await this.census(tenant)).filter((u) => u.id !== me.id);
        const over = overQuota(tenant, q, others, me);
        if (!over) return undefined;
        refusal = resourceExhausted(over);
        const before = others.filter((u) => madeBefore(u, me));
        if (overQuota(tenant, q, before, me)) return refusal;
        // The later it was made, the sooner it gives up, so the earlier racers see it go.
        giveUpAt = start + (this.maxWaitMs * (others.length + 1 - before.length)) / (others.length + 1);
      } catch (err) {
        refusal = unavailable(`tenant ${tenant}: counting its sandboxes for its quota failed (${String((err as Error)?.message ?? err)}); the new sandbox was not kept, retry`, err);
      }
      if (this.now() + wait > giveUpAt) return refusal;
      await sleep(wait + Math.floor(Math.random() * (wait / 2)));
    }
  }
}

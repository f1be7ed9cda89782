/**
 * Leases: every sandbox lives until its lease runs out unless renewed with
 * KeepAlive. The provider stores each lease with its sandbox (the source of
 * truth for a restarted sandboxd and for other replicas); this table is the
 * replica's cache of it, and the place that keeps provider writes rare.
 *
 * The write rule: a renewal asking for `now + ttl` costs nothing while the
 * lease already runs at least that long. Otherwise the lease is extended to
 * `now + 1.5 × ttl` and written. The next write is then due at the earliest
 * half a TTL later: at most one provider write per sandbox per half TTL,
 * whatever the renewal rate. The price: a lease may run up to half a TTL
 * longer than the last renewal asked for; `expiresAt` always says when.
 *
 * An RPC in flight on a sandbox (Exec, Upload, Download) pins it: the reaper
 * keeps renewing a pinned lease by the same rule (so other replicas, which
 * only see the stored lease, leave it alone), and when the last RPC ends the
 * lease starts over from then (a long Exec is not followed by an instant reap).
 */
import type { StoredLease } from "../providers/provider.js";
import { leases as metrics } from "../telemetry/metrics.js";

/** Where leases are stored: the SandboxProvider. */
export interface LeaseStore {
  extendLease(id: string, lease: StoredLease): Promise<StoredLease>;
  readLease(id: string): Promise<StoredLease | null | undefined>;
}

/** A written lease runs this many TTLs from the renewal that wrote it. */
export const GRANT_TTLS = 1.5;

export interface Lease {
  readonly sandboxId: string;
  /** The TTL renewals use when none is given. */
  ttlMs: number;
  /** When the lease runs out; never earlier than what the store holds. */
  expiresAt: number;
  /** RPCs (Exec, Upload, Download) running on the sandbox on this replica. */
  inFlight: number;
  /** The store write in progress (one at a time per lease). */
  writing?: Promise<void>;
  /**
   * The expiry a renewal asked for but could not store (the backend was
   * down). The client did renew: the reaper stores this before it would reap.
   */
  unstored?: number;
}

export class LeaseTable {
  private readonly leases = new Map<string, Lease>();

  constructor(
    private readonly store: LeaseStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** Tracks a lease as stored (at create, adoption, or after another replica extended it). */
  track(sandboxId: string, stored: StoredLease): Lease {
    const known = this.leases.get(sandboxId);
    if (known) {
      known.expiresAt = Math.max(known.expiresAt, stored.expiresAt);
      return known;
    }
    const lease: Lease = { sandboxId, ttlMs: stored.ttlMs, expiresAt: stored.expiresAt, inFlight: 0 };
    this.leases.set(sandboxId, lease);
    return lease;
  }

  get(sandboxId: string): Lease | undefined {
    return this.leases.get(sandboxId);
  }

  delete(sandboxId: string): void {
    this.leases.delete(sandboxId);
  }

  ids(): string[] {
    return [...this.leases.keys()];
  }

  /**
   * Makes the lease run at least `ttl` from now (a given TTL also becomes the
   * lease's TTL for later renewals), writing to the store only when the lease
   * runs shorter. Rejects when the write fails: a renewal is only reported
   * once stored. Undefined when the lease is not (or no longer) tracked.
   */
  async renew(sandboxId: string, ttlMs?: number): Promise<Lease | undefined> {
    const lease = this.leases.get(sandboxId);
    if (!lease) return undefined;
    if (ttlMs !== undefined) lease.ttlMs = ttlMs;
    metrics.renewals.inc();
    for (;;) {
      if (this.leases.get(sandboxId) !== lease) return undefined;
      if (this.now() + lease.ttlMs <= lease.expiresAt) return lease;
      if (lease.writing) {
        await lease.writing.catch(() => {});
        continue;
      }
      const wanted: StoredLease = { expiresAt: this.now() + Math.round(lease.ttlMs * GRANT_TTLS), ttlMs: lease.ttlMs };
      const write = this.store.extendLease(sandboxId, wanted).then(
        (stored) => {
          metrics.providerWrites.inc({ result: "ok" });
          lease.expiresAt = Math.max(lease.expiresAt, stored.expiresAt);
          if (lease.unstored !== undefined && lease.unstored <= lease.expiresAt) lease.unstored = undefined;
        },
        (err: unknown) => {
          metrics.providerWrites.inc({ result: "error" });
          lease.unstored = Math.max(lease.unstored ?? 0, wanted.expiresAt);
          throw err;
        },
      );
      lease.writing = write;
      try {
        await write;
      } finally {
        if (lease.writing === write) lease.writing = undefined;
      }
    }
  }

  /**
   * Re-reads the stored lease (another replica may have extended it or
   * destroyed the sandbox): "gone" (and forgotten), "live" or "expired".
   */
  async refresh(sandboxId: string): Promise<"gone" | "live" | "expired"> {
    const stored = await this.store.readLease(sandboxId);
    const lease = this.leases.get(sandboxId);
    if (stored === undefined) {
      this.leases.delete(sandboxId);
      return "gone";
    }
    if (stored && lease) lease.expiresAt = Math.max(lease.expiresAt, stored.expiresAt);
    const expiresAt = lease?.expiresAt ?? stored?.expiresAt ?? 0;
    return expiresAt > this.now() ? "live" : "expired";
  }

  /**
   * Pins the sandbox for an RPC; the returned function (idempotent) unpins it.
   * When the last pin goes the lease is renewed from then, in the background
   * (`onError` hears of a failed write; the reaper tries again while pinned).
   */
  pin(sandboxId: string, onError: (err: unknown) => void = () => {}): () => void {
    const lease = this.leases.get(sandboxId);
    if (!lease) return () => {};
    lease.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      lease.inFlight--;
      if (lease.inFlight === 0) this.renew(sandboxId).catch(onError);
    };
  }

  isExpired(lease: Lease): boolean {
    return this.reapable(lease, this.now());
  }

  /** Leases that ran out, are not pinned by an RPC and hold no renewal still to store. */
  expired(): Lease[] {
    const now = this.now();
    return [...this.leases.values()].filter((l) => this.reapable(l, now));
  }

  /**
   * Leases the reaper renews rather than reaps: pinned ones whose renewal
   * would write now, and ones with a renewal the store missed (still due).
   */
  renewalsDue(): Lease[] {
    const now = this.now();
    return [...this.leases.values()].filter((l) => !l.writing && (
      (l.inFlight > 0 && now + l.ttlMs > l.expiresAt) || (l.unstored !== undefined && l.unstored > now && l.expiresAt <= now + l.ttlMs)
    ));
  }

  /** Expired, and nothing to store first: neither pinned nor holding an unstored renewal that is still due. */
  private reapable(l: Lease, now: number): boolean {
    return l.inFlight === 0 && l.expiresAt <= now && !(l.unstored !== undefined && l.unstored > now);
  }
}

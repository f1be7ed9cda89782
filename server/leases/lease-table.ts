/**
 * Leases: every sandbox lives until its lease runs out unless renewed with
 * KeepAlive. An RPC in flight on a sandbox pins it: the reaper never takes a
 * pinned sandbox, and when the last RPC ends an already expired lease starts
 * over from then (a long Exec must not be followed by an instant reap).
 *
 * In memory for now; a later issue persists leases in the provider, so the
 * table only deals in plain values (ids, TTLs, times).
 */
export interface Lease {
  readonly sandboxId: string;
  /** The TTL renewals use when none is given. */
  ttlMs: number;
  expiresAt: number;
  /** RPCs (Exec, Upload, Download) running on the sandbox. */
  inFlight: number;
}

export class LeaseTable {
  private readonly leases = new Map<string, Lease>();

  constructor(private readonly now: () => number = Date.now) {}

  create(sandboxId: string, ttlMs: number): Lease {
    const lease: Lease = { sandboxId, ttlMs, expiresAt: this.now() + ttlMs, inFlight: 0 };
    this.leases.set(sandboxId, lease);
    return lease;
  }

  get(sandboxId: string): Lease | undefined {
    return this.leases.get(sandboxId);
  }

  /** Extends from now; a given TTL also becomes the lease's TTL for later renewals. */
  renew(sandboxId: string, ttlMs?: number): Lease | undefined {
    const lease = this.leases.get(sandboxId);
    if (!lease) return undefined;
    if (ttlMs !== undefined) lease.ttlMs = ttlMs;
    lease.expiresAt = this.now() + lease.ttlMs;
    return lease;
  }

  /** Pins the sandbox for an RPC; the returned function (idempotent) unpins it. */
  pin(sandboxId: string): () => void {
    const lease = this.leases.get(sandboxId);
    if (!lease) return () => {};
    lease.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      lease.inFlight--;
      if (lease.inFlight === 0 && lease.expiresAt <= this.now()) lease.expiresAt = this.now() + lease.ttlMs;
    };
  }

  delete(sandboxId: string): void {
    this.leases.delete(sandboxId);
  }

  /** Leases that ran out and are not pinned by an RPC. */
  expired(): Lease[] {
    const now = this.now();
    return [...this.leases.values()].filter((l) => l.inFlight === 0 && l.expiresAt <= now);
  }
}

/** Calls `reap` for every expired lease, every `intervalMs`. */
export class LeaseReaper {
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    private readonly table: LeaseTable,
    private readonly reap: (lease: Lease) => Promise<void>,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass; passes never overlap (a slow destroy must not be started twice). */
  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await Promise.all(this.table.expired().map((l) => this.reap(l)));
    } finally {
      this.running = false;
    }
  }
}

/**
 * The warm pool: sandboxes already made, started and SSH-ready, by shape,
 * which a create of that shape claims instead of waiting for a cold create.
 *
 * Members are ordinary sandboxes of the provider, labelled POOL_LABEL=<shape>,
 * with internet off and a lease this replica keeps renewing, so a crashed
 * replica's members are adopted by another (through the periodic sync) or
 * reaped when their lease runs out; never leaked. A claim is one atomic write
 * of the member's record by the provider (Proxmox: a compare-and-swap on the
 * config digest), so exactly one caller, on any replica, gets a member.
 * Members are checked (sshd's banner) before they are handed out; a broken
 * one is destroyed and the next is tried. An empty pool is a miss: the create
 * goes the cold way. Refills run in the background, a few at a time, with
 * backoff on provider errors.
 */
import type { Logger } from "../providers/local/options.js";
import { POOL_LABEL, type ClaimOptions, type SandboxHandle, type SandboxProvider } from "../providers/provider.js";
import { shapeKey, type PoolShape } from "../config/warm-pool.js";
import { pool as metrics } from "../telemetry/metrics.js";
import { sshBannerAnswers } from "../ssh/banner.js";

/** Members' lease: renewed every third of it while this replica runs. */
const MEMBER_TTL_MS = 10 * 60_000;
const BANNER_TIMEOUT_MS = 2000;
/**
 * Refills wait this long after the last claim: a create is mostly CPU on the
 * host (local runtime) or the template's lock (Proxmox), and claims that come
 * in a row must not wait behind the refills the previous ones started.
 */
const QUIET_MS = 250;

export interface WarmPoolOptions {
  provider: SandboxProvider;
  shapes: PoolShape[];
  refillConcurrency: number;
  logger: Logger;
  /** How often the pool looks for deficits and renews members' leases (default 1 s). */
  tickMs?: number;
}

interface ShapeState {
  shape: PoolShape;
  key: string;
  /** Ready members, oldest first. */
  ready: Map<string, SandboxHandle>;
  inFlight: number;
  failures: number;
  retryAt: number;
}

export class WarmPool {
  private readonly shapes = new Map<string, ShapeState>();
  private readonly abort = new AbortController();
  private timer?: NodeJS.Timeout;
  private lastRenewal = Date.now();
  private closed = false;
  /** Cold creates under way; refills wait for them. */
  private coldCreates = 0;
  private lastClaimAt = 0;
  private quietTimer?: NodeJS.Timeout;

  constructor(private readonly o: WarmPoolOptions) {
    for (const shape of o.shapes) {
      const key = shapeKey(shape);
      this.shapes.set(key, { shape, key, ready: new Map(), inFlight: 0, failures: 0, retryAt: 0 });
    }
  }

  get enabled(): boolean {
    return this.shapes.size > 0;
  }

  /** Begins refilling. */
  start(): void {
    if (!this.enabled) return;
    this.timer = setInterval(() => this.tick(), this.o.tickMs ?? 1000);
    this.timer.unref();
    this.tick();
  }

  /** The ids of members this replica holds (the periodic sync must not take them for unknown sandboxes). */
  ids(): string[] {
    return [...this.shapes.values()].flatMap((s) => [...s.ready.keys()]);
  }

  /** Whether sandboxes of this shape are pooled. */
  pools(spec: { cores: number; memoryMiB: number; diskGiB: number }): boolean {
    return this.shapes.has(shapeKey(spec));
  }

  /** A member found in the provider (at start, or made by another replica): kept if its shape is one of ours. */
  adopt(handle: SandboxHandle): boolean {
    const s = this.shapes.get(handle.spec.labels[POOL_LABEL] ?? "");
    if (!s || handle.state !== "running") return false;
    if (!s.ready.has(handle.id)) this.renew(handle.id); // it may have waited long for an owner
    s.ready.set(handle.id, handle);
    this.gauge(s);
    return true;
  }

  /** A member gone from the provider (claimed or destroyed by another replica). */
  forget(id: string): void {
    for (const s of this.shapes.values()) if (s.ready.delete(id)) this.gauge(s);
  }

  /**
   * A ready member of the shape `spec` names, claimed with `claim`, or
   * undefined (no pool of that shape, or none ready: the caller creates cold).
   */
  async claim(spec: { cores: number; memoryMiB: number; diskGiB: number }, claim: ClaimOptions): Promise<SandboxHandle | undefined> {
    const s = this.shapes.get(shapeKey(spec));
    if (!s) return undefined;
    try {
      return await this.claimFrom(s, claim);
    } finally {
      this.lastClaimAt = Date.now();
      this.tick(); // refill after the claim (and a quiet moment), not during it
    }
  }

  /**
   * Runs a cold create (the pool had nothing for it) while holding refills
   * back: on Proxmox both would queue for the template's clone lock, and the
   * client waiting is the one that matters.
   */
  async cold<T>(create: () => Promise<T>): Promise<T> {
    this.coldCreates++;
    try {
      return await create();
    } finally {
      this.coldCreates--;
      this.tick();
    }
  }

  private async claimFrom(s: ShapeState, claim: ClaimOptions): Promise<SandboxHandle | undefined> {
    for (;;) {
      const next = s.ready.values().next();
      if (next.done) {
        metrics.misses.inc({ shape: s.key });
        return undefined;
      }
      const member = next.value;
      s.ready.delete(member.id); // ours alone in this process from here on
      this.gauge(s);
      if (!(await sshBannerAnswers(member.ssh.host, member.ssh.port, BANNER_TIMEOUT_MS))) {
        metrics.broken.inc({ shape: s.key });
        this.o.logger.warn({ sandboxId: member.id, shape: s.key }, "warm pool member's sshd does not answer; destroying it and trying another");
        void this.o.provider.destroy(member.id).catch(() => {});
        continue;
      }
      const claimed = await this.o.provider.claim!(member.id, claim).catch((err: unknown) => {
        this.o.logger.warn({ sandboxId: member.id, err: String(err) }, "claiming a warm pool member failed; trying another");
        return undefined;
      });
      if (!claimed) continue; // another replica won it, or it is gone
      metrics.claims.inc({ shape: s.key });
      return claimed;
    }
  }

  /** Stops refilling and renewing; members stay (another replica, or this one restarted, adopts them). */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.quietTimer);
    for (const s of this.shapes.values()) metrics.size.set({ shape: s.key }, 0); // this replica holds none of them any more
    this.abort.abort(new Error("sandboxd is shutting down"));
  }

  private tick(): void {
    if (this.closed || !this.o.provider.claim || this.coldCreates > 0) return;
    const now = Date.now();
    if (now - this.lastRenewal >= MEMBER_TTL_MS / 3) {
      this.lastRenewal = now;
      for (const id of this.ids()) this.renew(id);
    }
    const quietIn = this.lastClaimAt + QUIET_MS - now;
    if (quietIn > 0) {
      clearTimeout(this.quietTimer);
      this.quietTimer = setTimeout(() => this.tick(), quietIn);
      this.quietTimer.unref();
      return;
    }
    let running = [...this.shapes.values()].reduce((n, s) => n + s.inFlight, 0);
    for (const s of this.shapes.values()) {
      if (now < s.retryAt) continue;
      while (running < this.o.refillConcurrency && s.ready.size + s.inFlight < s.shape.count) {
        running++;
        void this.refill(s);
      }
    }
  }

  private async refill(s: ShapeState): Promise<void> {
    s.inFlight++;
    const started = performance.now();
    try {
      const handle = await this.o.provider.create(
        { cores: s.shape.cores, memoryMiB: s.shape.memoryMiB, diskGiB: s.shape.diskGiB, internet: false, labels: { [POOL_LABEL]: s.key } },
        { signal: this.abort.signal, lease: { expiresAt: Date.now() + MEMBER_TTL_MS, ttlMs: MEMBER_TTL_MS } },
      );
      metrics.refillSeconds.observe({ shape: s.key, result: "ok" }, (performance.now() - started) / 1000);
      s.failures = 0;
      if (this.closed) return; // made during shutdown: it stays a member, adopted at the next start
      s.ready.set(handle.id, handle);
      this.gauge(s);
    } catch (err) {
      if (this.closed) return;
      metrics.refillSeconds.observe({ shape: s.key, result: "error" }, (performance.now() - started) / 1000);
      s.failures++;
      const waitMs = Math.min(30_000, 500 * 2 ** (s.failures - 1));
      s.retryAt = Date.now() + waitMs;
      this.o.logger.warn({ shape: s.key, err: String(err), retryInMs: waitMs }, "refilling the warm pool failed; backing off");
    } finally {
      s.inFlight--;
      this.tick();
    }
  }

  /**
   * Renews a member's lease, after checking it still is one: another replica may have claimed it
   * (its lease is then the client's, not ours to extend) or destroyed it.
   */
  private renew(id: string): void {
    const renewal = async () => {
      const now = await this.o.provider.get(id);
      if (!now || now.spec.labels[POOL_LABEL] === undefined) return this.forget(id);
      await this.o.provider.extendLease(id, { expiresAt: Date.now() + MEMBER_TTL_MS, ttlMs: MEMBER_TTL_MS });
    };
    renewal().catch((err: unknown) => this.o.logger.warn({ sandboxId: id, err: String(err) }, "renewing a warm pool member's lease failed; next renewal retries"));
  }

  private gauge(s: ShapeState): void {
    metrics.size.set({ shape: s.key }, s.ready.size);
  }
}

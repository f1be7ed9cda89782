/**
 * TenantQuotas on a fake provider shared by several "replicas" (each its own
 * TenantQuotas and view): limits math and messages, lease TTL, the creates
 * window, a burst on one replica, and replicas racing for the last slots
 * (never more than the quota admitted; racers do not all refuse each other).
 */
import { describe, expect, it } from "vitest";
import { parseDuration } from "../config/config.js";
import { parseTenantQuotas, type QuotaConfig } from "../config/quotas.js";
import { SandboxError, isSandboxError } from "../errors.js";
import { silentLogger } from "../providers/local/options.js";
import type { SandboxHandle, SandboxSpec } from "../providers/provider.js";
import { TenantQuotas, formatDuration, overQuota } from "./quotas.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quotas = (json: object): QuotaConfig => parseTenantQuotas(JSON.stringify(json), "SANDBOXD_TENANT_QUOTAS", parseDuration);
const spec = (tenant: string, memoryMiB = 256, cores = 1): SandboxSpec => ({ cores, memoryMiB, diskGiB: 1, internet: false, labels: {}, tenant });

/** The provider's state every replica shares: finished sandboxes by id. */
class Cluster {
  readonly sandboxes = new Map<string, SandboxHandle>();
  made = 0;
  failListing = false;
  private n = 0;
  provider = {
    listIds: async () => {
      await sleep(1);
      if (this.failListing) throw new Error("proxmox unreachable");
      return [...this.sandboxes.keys()];
    },
    get: async (id: string) => this.sandboxes.get(id),
  };
  async make(s: SandboxSpec, delayMs: number): Promise<SandboxHandle> {
    const createdAt = new Date();
    const id = `sbx-${++this.n}`;
    await sleep(delayMs);
    const h = { id, state: "running", spec: s, address: "", createdAt, ssh: {} } as unknown as SandboxHandle;
    this.sandboxes.set(id, h); // visible once made
    this.made++;
    return h;
  }
}

function replica(cluster: Cluster, config: QuotaConfig, o: { now?: () => number; maxWaitMs?: number } = {}) {
  const view = new Map<string, SandboxHandle>();
  const q = new TenantQuotas({ config, provider: cluster.provider, view: () => view.values(), logger: silentLogger, maxWaitMs: o.maxWaitMs ?? 1500, now: o.now });
  const create = (s: SandboxSpec, delayMs = 5) => q.create(s, {
    create: () => cluster.make(s, delayMs),
    track: (h) => view.set(h.id, h),
    undo: async (id) => {
      await sleep(2);
      cluster.sandboxes.delete(id);
      view.delete(id);
    },
  });
  return { q, view, create };
}

const outcome = (p: Promise<unknown>) => p.then(() => "ok", (e: unknown) => (isSandboxError(e, "resource_exhausted") ? "exhausted" : `other: ${String(e)}`));

describe("overQuota and messages", () => {
  const q = { sandboxes: 2, cores: 4, memoryMiB: 1024, diskGiB: 10 };
  const one = { cores: 1, memoryMiB: 512, diskGiB: 2 };
  it("names the quota, its limit and the use", () => {
    expect(overQuota("t", q, [], one)).toBeUndefined();
    expect(overQuota("t", q, [one], one)).toBeUndefined();
    expect(overQuota("t", q, [one, one], one)).toBe("tenant t: quota sandboxes=2 reached (2 in use)");
    expect(overQuota("t", { memoryMiB: 1024 }, [one], { ...one, memoryMiB: 768 })).toBe("tenant t: quota memoryMiB=1024 exceeded (512 in use + 768 asked)");
    expect(overQuota("t", { cores: 4 }, [one, { ...one, cores: 2 }], { ...one, cores: 2 })).toBe("tenant t: quota cores=4 exceeded (3 in use + 2 asked)");
    expect(overQuota("t", { diskGiB: 4 }, [one], one)).toBeUndefined();
    expect(overQuota("t", { diskGiB: 4 }, [one, one], { ...one, diskGiB: 1 })).toBe("tenant t: quota diskGiB=4 exceeded (4 in use + 1 asked)");
    expect(overQuota("t", { sandboxes: 0 }, [], one)).toBe("tenant t: quota sandboxes=0 reached (0 in use)");
    expect(overQuota("t", {}, Array(1000).fill(one), one)).toBeUndefined();
    expect([3600_000, 90 * 60_000, 45_000, 1500].map(formatDuration)).toEqual(["1h", "90m", "45s", "1500ms"]);
  });

  it("lease TTL: above the tenant's maximum is RESOURCE_EXHAUSTED; unset takes the default cut to it; '*' covers tenants not listed", () => {
    const { q: t } = replica(new Cluster(), quotas({ "*": { maxLeaseTtl: "1h" }, agents: { maxLeaseTtl: "5m" }, free: {} }));
    expect(t.leaseTtl("agents", undefined, 600_000)).toBe(300_000);
    expect(t.leaseTtl("agents", 60_000, 600_000)).toBe(60_000);
    expect(() => t.leaseTtl("agents", 600_000, 600_000)).toThrow("tenant agents: quota maxLeaseTtl=5m exceeded (lease_ttl 10m asked)");
    expect(() => t.checkRenewal("agents", 301_000)).toThrow(SandboxError);
    expect(() => t.checkRenewal("agents", 301_000)).toThrow("quota maxLeaseTtl=5m exceeded (lease_ttl 301s asked)");
    t.checkRenewal("agents", undefined);
    expect(t.leaseTtl("someone", 3600_000, 600_000)).toBe(3600_000);
    expect(() => t.leaseTtl("someone", 7200_000, 600_000)).toThrow("tenant someone: quota maxLeaseTtl=1h exceeded");
    expect(t.leaseTtl("free", 7200_000, 600_000)).toBe(7200_000);
  });
});

describe("creates per minute", () => {
  it("a sliding window per tenant; a create that made nothing does not count", async () => {
    let now = 1_000_000;
    const cluster = new Cluster();
    const r = replica(cluster, quotas({ "*": { createsPerMinute: 2 } }), { now: () => now });
    await r.q.create(spec("a"), { create: () => Promise.reject(new Error("invalid spec")), track: () => {}, undo: async () => {} }).catch(() => {});
    await r.create(spec("a"));
    now += 30_000;
    await r.create(spec("a"));
    await expect(r.create(spec("a"))).rejects.toThrow("tenant a: quota createsPerMinute=2 reached (2 creates in the last minute)");
    await r.create(spec("b")); // another tenant has its own window
    now += 30_001; // the first one left the window
    await r.create(spec("a"));
    await expect(r.create(spec("a"))).rejects.toThrow(/createsPerMinute=2 reached/);
    expect(cluster.made).toBe(4);
  });
});

describe("counts", () => {
  it("a tenant without count or size quotas never lists the provider", async () => {
    const cluster = new Cluster();
    cluster.failListing = true;
    const r = replica(cluster, quotas({ "*": { maxLeaseTtl: "1h" }, agents: { sandboxes: 5 } }));
    await r.create(spec("other"));
    await expect(r.create(spec("agents"))).rejects.toThrow(/counting its sandboxes for its quota failed \(proxmox unreachable\)/);
    // Failed closed: the sandbox made before the count failed is gone again.
    expect([...cluster.sandboxes.values()].map((h) => h.spec.tenant)).toEqual(["other"]);
  });

  it("a burst on one replica never goes past the quota, without waiting for each other", async () => {
    const cluster = new Cluster();
    const r = replica(cluster, quotas({ "*": { sandboxes: 2 } }));
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: 6 }, () => outcome(r.create(spec("a"), 100))));
    expect(results.sort()).toEqual(["exhausted", "exhausted", "exhausted", "exhausted", "ok", "ok"]);
    expect(Date.now() - t0).toBeLessThan(180); // the two creates ran at once
    expect(cluster.made).toBe(2); // the others were refused before making anything
    await expect(r.create(spec("a"))).rejects.toThrow("tenant a: quota sandboxes=2 reached (2 in use)");
    await r.create(spec("b"));
  });

  it("another replica's sandboxes count: memory in use is read from the provider", async () => {
    const cluster = new Cluster();
    const a = replica(cluster, quotas({ agents: { memoryMiB: 1024 } }));
    const b = replica(cluster, quotas({ agents: { memoryMiB: 1024 } }));
    await a.create(spec("agents", 768));
    // B's view is empty: its pre-check passes, the count after the create does not.
    const err = await b.create(spec("agents", 512)).catch((e: unknown) => e);
    expect(isSandboxError(err, "resource_exhausted"), String(err)).toBe(true);
    expect((err as Error).message).toBe("tenant agents: quota memoryMiB=1024 exceeded (768 in use + 512 asked)");
    expect(cluster.made).toBe(2);
    expect([...cluster.sandboxes.values()].map((h) => h.spec.memoryMiB)).toEqual([768]);
    await b.create(spec("agents", 256));
  });

  it("a stale view (a sandbox another replica destroyed) does not refuse: a fresh count decides", async () => {
    const cluster = new Cluster();
    const a = replica(cluster, quotas({ t: { sandboxes: 1 } }));
    const b = replica(cluster, quotas({ t: { sandboxes: 1 } }));
    const first = await a.create(spec("t"));
    b.view.set(first.id, first); // B adopted it (sync) ...
    cluster.sandboxes.delete(first.id); // ... and A destroyed it since
    await b.create(spec("t"));
    await expect(b.create(spec("t"))).rejects.toThrow("tenant t: quota sandboxes=1 reached (1 in use)");
    expect(cluster.made).toBe(2);
  });

  it("two replicas racing for the last slot: exactly one admitted, the other undone", async () => {
    for (let i = 0; i < 12; i++) {
      const cluster = new Cluster();
      const a = replica(cluster, quotas({ t: { sandboxes: 1 } }));
      const b = replica(cluster, quotas({ t: { sandboxes: 1 } }));
      const results = await Promise.all([outcome(a.create(spec("t"), Math.random() * 10)), outcome(b.create(spec("t"), Math.random() * 10))]);
      expect(results.sort()).toEqual(["exhausted", "ok"]);
      expect(cluster.sandboxes.size).toBe(1);
      expect(cluster.made).toBe(2);
    }
  });

  it("three replicas, many creates each, quota 3: never more than 3 held, and the slots are filled", async () => {
    const admitted: number[] = [];
    for (let i = 0; i < 8; i++) {
      const cluster = new Cluster();
      const rs = [0, 1, 2].map(() => replica(cluster, quotas({ "*": { sandboxes: 3 } })));
      const all = rs.flatMap((r) => Array.from({ length: 4 }, () => outcome(r.create(spec("t"), Math.random() * 30))));
      const results = await Promise.all(all);
      expect(results.filter((x) => x !== "ok" && x !== "exhausted")).toEqual([]);
      const ok = results.filter((x) => x === "ok").length;
      expect(cluster.sandboxes.size).toBe(ok);
      expect(ok).toBeLessThanOrEqual(3);
      admitted.push(ok);
    }
    expect(admitted).toEqual(Array(8).fill(3));
  });
});

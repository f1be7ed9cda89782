import { describe, expect, it } from "vitest";
import type { StoredLease } from "../providers/provider.js";
import { LeaseReaper } from "./lease-reaper.js";
import { LeaseTable, type LeaseStore } from "./lease-table.js";

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

/** A store like the providers': keeps the later expiry, counts writes. */
class MemoryStore implements LeaseStore {
  readonly stored = new Map<string, StoredLease>();
  writes = 0;
  failNext = 0;
  async extendLease(id: string, lease: StoredLease): Promise<StoredLease> {
    const cur = this.stored.get(id);
    if (cur === undefined) throw new Error("not found");
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error("proxmox said 596");
    }
    if (cur.expiresAt >= lease.expiresAt) return cur;
    this.writes++;
    this.stored.set(id, { ...lease });
    return lease;
  }
  async readLease(id: string): Promise<StoredLease | null | undefined> {
    return this.stored.get(id);
  }
}

function setup(ttl = 60_000) {
  const c = clock();
  const store = new MemoryStore();
  const table = new LeaseTable(store, c.now);
  const add = (id: string) => {
    const lease = { expiresAt: c.now() + ttl, ttlMs: ttl };
    store.stored.set(id, lease);
    table.track(id, lease);
  };
  return { c, store, table, add };
}

const silent = { info() {}, warn() {}, error() {}, debug() {} };

describe("LeaseTable", () => {
  it("a renewal always covers now + TTL and is stored before it is reported", async () => {
    const { c, store, table, add } = setup(60_000);
    add("a");
    for (let i = 0; i < 100; i++) {
      c.advance(7_000);
      const lease = (await table.renew("a"))!;
      expect(lease.expiresAt).toBeGreaterThanOrEqual(c.now() + 60_000);
      expect(store.stored.get("a")!.expiresAt).toBe(lease.expiresAt);
    }
  });

  it("writes to the store at most once per half TTL however often clients renew", async () => {
    const { c, store, table, add } = setup(60_000);
    for (let i = 0; i < 1000; i++) add(`s${i}`);
    const minutes = 10;
    for (let t = 0; t < minutes * 60_000; t += 10_000) {
      c.advance(10_000);
      await Promise.all(Array.from({ length: 1000 }, (_, i) => table.renew(`s${i}`)));
    }
    // Bound: one write per sandbox per 30 s = 20 per sandbox in 10 minutes.
    expect(store.writes).toBeLessThanOrEqual(1000 * (minutes * 60_000) / 30_000);
    // And far below writing through (60 renewals per sandbox).
    expect(store.writes).toBeLessThan(1000 * 60 / 2);
  });

  it("concurrent renewals of one lease share a single write", async () => {
    const { c, store, table, add } = setup(60_000);
    add("a");
    c.advance(1_000);
    await Promise.all(Array.from({ length: 20 }, () => table.renew("a")));
    expect(store.writes).toBe(1);
  });

  it("a failed write is reported and leaves the lease as it was", async () => {
    const { c, store, table, add } = setup(60_000);
    add("a");
    const before = table.get("a")!.expiresAt;
    c.advance(1_000);
    store.failNext = 1;
    await expect(table.renew("a")).rejects.toThrow(/596/);
    expect(table.get("a")!.expiresAt).toBe(before);
  });

  it("a renewal the store missed (outage) is not reaped: the reaper stores it once the store is back", async () => {
    const { c, store, table, add } = setup(10_000);
    add("a");
    const destroyed: string[] = [];
    const reaper = new LeaseReaper(table, { destroy: async (id) => void destroyed.push(id), forget: () => {}, logger: silent }, 1000, c.now);
    c.advance(9_000);
    store.failNext = 1000; // the backend is down
    await expect(table.renew("a")).rejects.toThrow(/596/);
    c.advance(5_000); // past the stored expiry, within the renewal the client asked for
    await reaper.pass();
    expect(destroyed).toEqual([]);
    expect(table.expired()).toEqual([]);
    store.failNext = 0; // back
    await reaper.pass();
    expect(store.stored.get("a")!.expiresAt).toBeGreaterThan(c.now() + 10_000);
    expect(table.get("a")!.unstored).toBeUndefined();
    // A client that stops renewing still loses it on time.
    c.advance(20_000);
    await reaper.pass();
    expect(destroyed).toEqual(["a"]);
  });

  it("a new TTL is kept for later renewals", async () => {
    const { c, table, add } = setup(60_000);
    add("a");
    expect((await table.renew("a", 600_000))!.expiresAt).toBeGreaterThanOrEqual(c.now() + 600_000);
    expect(table.get("a")!.ttlMs).toBe(600_000);
    expect(await table.renew("missing")).toBeUndefined();
  });

  it("never reports a pinned lease; the lease restarts when the last RPC ends", async () => {
    const { c, table, add } = setup(100);
    add("a");
    const unpin1 = table.pin("a");
    const unpin2 = table.pin("a");
    c.advance(1_000);
    expect(table.expired()).toEqual([]);
    expect(table.renewalsDue().map((l) => l.sandboxId)).toEqual(["a"]);
    unpin1();
    unpin1(); // idempotent
    expect(table.expired()).toEqual([]);
    unpin2();
    await new Promise((r) => setImmediate(r));
    expect(table.get("a")!.expiresAt).toBeGreaterThanOrEqual(c.now() + 100);
  });

  it("refresh adopts another replica's later expiry and tells when the sandbox is gone", async () => {
    const { c, store, table, add } = setup(1_000);
    add("a");
    c.advance(2_000);
    expect(table.expired().length).toBe(1);
    store.stored.set("a", { expiresAt: c.now() + 5_000, ttlMs: 1_000 });
    expect(await table.refresh("a")).toBe("live");
    expect(table.expired()).toEqual([]);
    c.advance(6_000);
    expect(await table.refresh("a")).toBe("expired");
    store.stored.delete("a");
    expect(await table.refresh("a")).toBe("gone");
    expect(table.get("a")).toBeUndefined();
  });
});

describe("LeaseReaper", () => {
  it("destroys expired leases, skips ones another replica renewed, forgets ones already gone", async () => {
    const { c, store, table, add } = setup(1_000);
    add("expired");
    add("renewed-elsewhere");
    add("gone");
    add("pinned");
    table.pin("pinned");
    const destroyed: string[] = [];
    const forgotten: string[] = [];
    const reaper = new LeaseReaper(table, {
      destroy: async (id) => {
        destroyed.push(id);
        table.delete(id);
      },
      forget: (id) => forgotten.push(id),
      logger: silent,
    }, 1000, c.now);
    c.advance(1_500);
    store.stored.set("renewed-elsewhere", { expiresAt: c.now() + 10_000, ttlMs: 1_000 });
    store.stored.delete("gone");
    await reaper.pass();
    expect(destroyed).toEqual(["expired"]);
    expect(forgotten).toEqual(["gone"]);
    expect(table.get("renewed-elsewhere")).toBeDefined();
    // The pinned lease was renewed for the other replicas' sake.
    expect(store.stored.get("pinned")!.expiresAt).toBeGreaterThan(c.now());
  });

  it("retries a failing destroy, backing off, until it succeeds", async () => {
    const { c, table, add } = setup(1_000);
    add("a");
    let attempts = 0;
    const reaper = new LeaseReaper(table, {
      destroy: async (id) => {
        attempts++;
        if (attempts < 4) throw new Error("proxmox 500");
        table.delete(id);
      },
      forget: () => {},
      logger: silent,
    }, 1000, c.now);
    c.advance(2_000);
    for (let i = 0; i < 40 && table.get("a"); i++) {
      await reaper.pass();
      c.advance(1_000);
    }
    expect(attempts).toBe(4);
    expect(table.get("a")).toBeUndefined();
  });
});

import { describe, expect, it } from "vitest";
import { LeaseReaper, LeaseTable } from "./lease-table.js";

function clock() {
  let t = 1_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("LeaseTable", () => {
  it("expires after the TTL and renews from now", () => {
    const c = clock();
    const table = new LeaseTable(c.now);
    table.create("a", 100);
    c.advance(99);
    expect(table.expired()).toEqual([]);
    table.renew("a");
    c.advance(99);
    expect(table.expired()).toEqual([]);
    c.advance(1);
    expect(table.expired().map((l) => l.sandboxId)).toEqual(["a"]);
  });

  it("renew with a TTL keeps it for later renewals", () => {
    const c = clock();
    const table = new LeaseTable(c.now);
    table.create("a", 100);
    expect(table.renew("a", 500)!.expiresAt).toBe(1_500);
    c.advance(10);
    expect(table.renew("a")!.expiresAt).toBe(1_510);
    expect(table.renew("missing")).toBeUndefined();
  });

  it("never reports a pinned lease; the lease restarts when the last RPC ends", () => {
    const c = clock();
    const table = new LeaseTable(c.now);
    table.create("a", 100);
    const unpin1 = table.pin("a");
    const unpin2 = table.pin("a");
    c.advance(1_000);
    expect(table.expired()).toEqual([]);
    unpin1();
    unpin1(); // idempotent
    expect(table.expired()).toEqual([]);
    unpin2();
    expect(table.get("a")!.expiresAt).toBe(c.now() + 100);
    c.advance(100);
    expect(table.expired()).toHaveLength(1);
  });

  it("an unexpired lease keeps its expiry when unpinned", () => {
    const c = clock();
    const table = new LeaseTable(c.now);
    table.create("a", 100);
    table.pin("a")();
    expect(table.get("a")!.expiresAt).toBe(1_100);
  });
});

describe("LeaseReaper", () => {
  it("reaps expired leases once per pass, without overlapping passes", async () => {
    const c = clock();
    const table = new LeaseTable(c.now);
    table.create("a", 10);
    table.create("b", 1_000);
    const reaped: string[] = [];
    let finish!: () => void;
    const reaper = new LeaseReaper(table, async (l) => {
      reaped.push(l.sandboxId);
      await new Promise<void>((r) => (finish = r));
      table.delete(l.sandboxId);
    });
    c.advance(10);
    const first = reaper.tick();
    await reaper.tick(); // skipped: the first pass still runs
    finish();
    await first;
    await reaper.tick();
    expect(reaped).toEqual(["a"]);
  });
});

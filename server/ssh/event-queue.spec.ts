import { describe, expect, it } from "vitest";
import { EventQueue } from "./event-queue.js";

describe("EventQueue", () => {
  it("signals high and low water marks by buffered bytes", async () => {
    const calls: string[] = [];
    const q = new EventQueue<Buffer>({ highWaterMark: 10, size: (b) => b.length, onHigh: () => calls.push("high"), onLow: () => calls.push("low") });
    q.push(Buffer.alloc(6));
    q.push(Buffer.alloc(6));
    expect(calls).toEqual(["high"]);
    await q.next();
    expect(calls).toEqual(["high"]); // 6 left, above half
    await q.next();
    expect(calls).toEqual(["high", "low"]);
  });

  it("hands events to a waiting consumer, then ends or fails after the queued ones", async () => {
    const q = new EventQueue<number>({ highWaterMark: 1, size: () => 0, onHigh() {}, onLow() {} });
    const pending = q.next();
    q.push(1);
    expect(await pending).toEqual({ value: 1, done: false });
    q.push(2);
    q.fail(new Error("boom"));
    q.push(3); // ignored after fail
    expect(await q.next()).toEqual({ value: 2, done: false });
    await expect(q.next()).rejects.toThrow("boom");
    const e = new EventQueue<number>({ highWaterMark: 1, size: () => 0, onHigh() {}, onLow() {} });
    const waiting = e.next();
    e.end();
    expect(await waiting).toEqual({ value: undefined, done: true });
  });

  it("coalesces consecutive mergeable events up to the size bound, keeping order and kind", async () => {
    type Ev = { kind: "out" | "err"; data: string };
    const q = new EventQueue<Ev>({
      highWaterMark: 1000, size: (e) => e.data.length, onHigh() {}, onLow() {},
      mergeable: (a, b) => a.kind === b.kind,
      merge: (es) => ({ kind: es[0]!.kind, data: es.map((e) => e.data).join("") }),
      maxMergedSize: 6,
    });
    for (const [kind, data] of [["out", "ab"], ["out", "cd"], ["out", "ef"], ["out", "gh"], ["err", "x"], ["out", "i"]] as const) q.push({ kind, data });
    q.end();
    const got: Ev[] = [];
    for (let r = await q.next(); !r.done; r = await q.next()) got.push(r.value);
    expect(got).toEqual([
      { kind: "out", data: "abcdef" },
      { kind: "out", data: "gh" },
      { kind: "err", data: "x" },
      { kind: "out", data: "i" },
    ]);
    expect(q.buffered).toBe(0);
  });
});

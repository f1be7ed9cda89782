import { describe, expect, it } from "vitest";
import { Placement, freeMemory } from "./placement.js";

const GiB = 2 ** 30;

describe("placement", () => {
  it("computes free memory for configured, online nodes only", () => {
    const free = freeMemory([
      { node: "a", maxmem: 8 * GiB, mem: 2 * GiB, status: "online" },
      { node: "b", maxmem: 8 * GiB, mem: 1 * GiB },
      { node: "c", maxmem: 64 * GiB, mem: 0, status: "offline" },
      { node: "z", maxmem: 64 * GiB, mem: 0 },
    ], ["a", "b", "c"]);
    expect([...free]).toEqual([["a", 6 * GiB], ["b", 7 * GiB]]);
  });

  it("picks the node with the most free memory, counting creates in flight", () => {
    const p = new Placement(["a", "b"]);
    const free = new Map([["a", 6 * GiB], ["b", 7 * GiB]]);
    const first = p.pick(free, 2 * GiB);
    const second = p.pick(free, 2 * GiB);
    expect([first.node, second.node]).toEqual(["b", "a"]);
    first.release();
    first.release();
    expect(p.pick(free, 1).node).toBe("b");
  });

  it("falls back to the first node without figures", () => {
    expect(new Placement(["x", "y"]).pick(new Map(), 1).node).toBe("x");
  });
});

import { describe, expect, it } from "vitest";
import { listPage } from "./listing.js";
import type { SandboxView } from "./types.js";

const view = (id: string, t: number, labels: Record<string, string> = {}): SandboxView => ({
  id, state: "running", labels, resources: { cores: 1, memoryMiB: 64, diskGiB: 1 }, internet: false, egressAllowlist: [],
  createdAt: new Date(t), leaseExpiresAt: new Date(t + 1000), provider: "test", tenant: "default",
});

describe("listPage", () => {
  const all = [view("c", 3), view("a", 1, { k: "v" }), view("b", 1, { k: "v" }), view("d", 4, { k: "w" })];

  it("orders by creation, then id, and pages with tokens", () => {
    const p1 = listPage(all, { selector: {}, pageSize: 3, pageToken: "" });
    expect(p1.sandboxes.map((s) => s.id)).toEqual(["a", "b", "c"]);
    const p2 = listPage(all, { selector: {}, pageSize: 3, pageToken: p1.nextPageToken });
    expect(p2.sandboxes.map((s) => s.id)).toEqual(["d"]);
    expect(p2.nextPageToken).toBe("");
  });

  it("filters by selector and survives deletions between pages", () => {
    const p1 = listPage(all, { selector: { k: "v" }, pageSize: 1, pageToken: "" });
    expect(p1.sandboxes.map((s) => s.id)).toEqual(["a"]);
    const p2 = listPage(all.filter((s) => s.id !== "a"), { selector: { k: "v" }, pageSize: 1, pageToken: p1.nextPageToken });
    expect(p2.sandboxes.map((s) => s.id)).toEqual(["b"]);
    expect(p2.nextPageToken).toBe("");
  });

  it("defaults and caps the page size, rejects foreign tokens", () => {
    const many = Array.from({ length: 1200 }, (_, i) => view(`s${i}`, i));
    expect(listPage(many, { selector: {}, pageSize: 0, pageToken: "" }).sandboxes).toHaveLength(100);
    expect(listPage(many, { selector: {}, pageSize: 5000, pageToken: "" }).sandboxes).toHaveLength(1000);
    expect(() => listPage(many, { selector: {}, pageSize: 1, pageToken: "xyz" })).toThrow(/page_token/);
  });
});

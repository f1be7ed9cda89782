import { describe, expect, it } from "vitest";
import { formatDescription, hasTag, parseDescription, parseTags, withTag } from "./description.js";

describe("description", () => {
  const meta = { id: "sbx-101-abcd1234", createdAt: new Date("2026-01-02T03:04:05.678Z"), spec: { cores: 2, memoryMiB: 1024, diskGiB: 4, internet: true, labels: { a: "b", "x y": "ü\n" } } };
  it("round-trips, also with PVE's trailing newline", () => {
    expect(parseDescription(formatDescription(meta))).toEqual(meta);
    expect(parseDescription(`${formatDescription(meta)}\n`)).toEqual(meta);
  });
  it("carries the lease, to the millisecond", () => {
    const withLease = { ...meta, lease: { expiresAt: Date.parse("2026-01-02T04:00:00.123Z"), ttlMs: 60_000 } };
    expect(parseDescription(formatDescription(withLease))).toEqual(withLease);
    const mangled = formatDescription(meta).replace(/}$/, ',"lease":{"expiresAt":"never","ttlMs":5}}');
    expect(parseDescription(mangled)).toEqual(meta);
  });
  it("carries the create request id", () => {
    const withRequest = { ...meta, request: { id: "job-42/attempt\"1", fingerprint: "abc" } };
    expect(parseDescription(formatDescription(withRequest))).toEqual(withRequest);
  });
  it("carries the tenant (absent: the default tenant)", () => {
    const withTenant = { ...meta, spec: { ...meta.spec, tenant: "team-a" } };
    expect(parseDescription(formatDescription(withTenant))).toEqual(withTenant);
    expect(parseDescription(formatDescription(meta))?.spec.tenant).toBeUndefined();
  });
  it("ignores descriptions sandboxd did not write", () => {
    expect(parseDescription(undefined)).toBeUndefined();
    expect(parseDescription("sandbox template")).toBeUndefined();
    expect(parseDescription("sandboxd-meta:{not json")).toBeUndefined();
    expect(parseDescription('sandboxd-meta:{"v":2}')).toBeUndefined();
  });
});

describe("tags", () => {
  it("marks and recognises sandboxd's tag in PVE's normalised forms", () => {
    expect(withTag(undefined, "sandboxd")).toBe("sandboxd");
    expect(withTag("prod;Web", "sandboxd")).toBe("prod;sandboxd;web");
    expect(withTag("sandboxd", "sandboxd")).toBe("sandboxd");
    expect(hasTag("a;sandboxd;z", "sandboxd")).toBe(true);
    expect(hasTag("a, SANDBOXD b", "sandboxd")).toBe(true);
    expect(hasTag("sandboxd-other", "sandboxd")).toBe(false);
    expect(hasTag(undefined, "sandboxd")).toBe(false);
    expect(parseTags(" a ;b,c ")).toEqual(["a", "b", "c"]);
  });
});

/**
 * Proxmox VE facts, read from the schema extracted from pve-docs (PVE 9.1.3), and PVE's own
 * validation behaviour (pve-common JSONSchema.pm) as ported in validate.ts.
 */
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PVE_ENDPOINTS } from "./endpoints.js";
import { NAMED_FORMATS } from "./formats.js";
import { SCHEMA_SOURCE, endpointOf, schemaOf, validateParams, validateValue, type PropSchema } from "./validate.js";

const CLONE = "POST /nodes/{node}/lxc/{vmid}/clone";
const CONFIG = "PUT /nodes/{node}/lxc/{vmid}/config";
const FW = "PUT /nodes/{node}/lxc/{vmid}/firewall/options";
const CT = { node: "pve1", vmid: "105" };
const form = { form: true };
const json = { form: false };
const clone = (p: Record<string, unknown>) => validateParams(CLONE, { ...CT, newid: "200", ...p }, form);
const config = (p: Record<string, unknown>) => validateParams(CONFIG, { ...CT, ...p }, form);
const prop = (key: string, name: string): PropSchema => schemaOf(key)!.parameters.properties![name]!;
const fmt = (m: string) => `invalid format - ${m}\n`;
const NOT_DEFINED = "property is not defined in schema and the schema does not allow additional properties";

describe("the extracted schema", () => {
  it("names its source: pve-docs apidata.js of PVE 9.1.3 at a fixed commit", () => {
    expect(SCHEMA_SOURCE).toEqual({
      repo: "proxmox/pve-docs",
      path: "api-viewer/apidata.js",
      commit: "e5010dcea566a205770572cfbc5fe0af220d5077",
      pveVersion: "9.1.3",
    });
  });

  it("has an entry with a parameter schema for every endpoint sandboxd calls", () => {
    const missing = PVE_ENDPOINTS.filter((k) => !schemaOf(k)?.parameters);
    expect(missing).toEqual([]);
    expect(schemaOf("GET /nodes/{node}/qemu")).toBeUndefined();
  });

  it("drops description text but keeps parameters named description", () => {
    expect(prop(CLONE, "description")).toEqual({ optional: 1, type: "string", typetext: "<string>" });
    expect(prop(CLONE, "target")).toEqual({ format: "pve-node", optional: 1, type: "string", typetext: "<string>" });
  });

  it("knows the config digest is a 40-char SHA-1 and the firewall digest a 64-char SHA-256", () => {
    expect(prop(CONFIG, "digest").maxLength).toBe(40);
    expect(prop(FW, "digest").maxLength).toBe(64);
    expect(config({ digest: "a".repeat(41) })).toEqual({ digest: "value may only be 40 characters long" });
    expect(validateParams(FW, { ...CT, digest: "a".repeat(64) }, form)).toEqual({});
  });

  it("has a port for every named format the endpoints use", () => {
    const names = new Set<string>();
    const walk = (s: unknown): void => {
      if (!s || typeof s !== "object") return;
      const o = s as Record<string, unknown>;
      if (typeof o.format === "string" && typeof o.type === "string") names.add(o.format.replace(/-(list|opt)$/, ""));
      Object.values(o).forEach(walk);
    };
    PVE_ENDPOINTS.forEach((k) => walk(schemaOf(k)!.parameters));
    expect([...names].filter((n) => !NAMED_FORMATS[n])).toEqual([]);
    expect(names.size).toBeGreaterThanOrEqual(20);
  });
});

describe("validateParams", () => {
  it("refuses GET /pools?type=lxc without poolid (type requires poolid)", () => {
    expect(validateParams("GET /pools", { type: "lxc" }, form)).toEqual({ poolid: "missing property required by 'type'" });
    expect(validateParams("GET /pools", { type: "lxc", poolid: "sandboxes" }, form)).toEqual({});
    // an empty form value is no value (decode_urlencoded); in JSON it is an empty pool name
    expect(validateParams("GET /pools", { type: "lxc", poolid: "" }, form)).toEqual({ poolid: "missing property required by 'type'" });
    expect(validateParams("GET /pools", { type: "lxc", poolid: "" }, json)).toEqual({ poolid: fmt("pool name '' contains invalid characters") });
  });

  it("checks clone hostnames as DNS names", () => {
    for (const hostname of ["-a", "a..b", ".a", "a_b"]) {
      expect(clone({ hostname })).toEqual({ hostname: fmt("value does not look like a valid DNS name") });
    }
    expect(clone({ hostname: "sbx-101-ab12cd34" })).toEqual({});
  });

  it("checks clone pool, storage and snapname formats", () => {
    expect(clone({ pool: "sandboxes", storage: "local-lvm", snapname: "base-1" })).toEqual({});
    expect(clone({ pool: "a/b/c/d" })).toEqual({ pool: fmt("pool name 'a/b/c/d' nested too deeply (max levels = 3)") });
    expect(clone({ pool: "my pool" })).toEqual({ pool: fmt("pool name 'my pool' contains invalid characters") });
    expect(clone({ storage: "x" })).toEqual({ storage: fmt("storage ID 'x' cannot be shorter than 2 characters") });
    expect(clone({ storage: "local-" })).toEqual({ storage: fmt("storage ID 'local-' contains illegal characters") });
    expect(clone({ snapname: "1st" })).toEqual({ snapname: fmt("invalid configuration ID '1st'") });
    expect(clone({ snapname: "s".repeat(41) })).toEqual({ snapname: "value may only be 40 characters long" });
  });

  it("puts no length cap on a clone description, unlike a config description (8192)", () => {
    expect(clone({ description: "x".repeat(20000) })).toEqual({});
    expect(config({ description: "x".repeat(8193) })).toEqual({ description: "value may only be 8192 characters long" });
  });

  it("takes bwlimit as a non-negative number", () => {
    expect(clone({ bwlimit: "1.5" })).toEqual({});
    expect(clone({ bwlimit: "-1" })).toEqual({ bwlimit: "value must have a minimum value of 0" });
    expect(clone({ bwlimit: "fast" })).toEqual({ bwlimit: "type check ('number') failed - got 'fast'" });
  });

  it("accepts a config update with arch, onboot and a mount point property string", () => {
    expect(config({ arch: "amd64", onboot: "1", mp0: "local-lvm:8,mp=/data" })).toEqual({});
    expect(config({ mp0: "local-lvm:8,mp=/data,backup=yes,mountoptions=noatime;nodev" })).toEqual({});
    expect(config({ arch: "sparc" })).toEqual({
      arch: "value 'sparc' does not have a value in the enumeration 'amd64, i386, arm64, armhf, riscv32, riscv64'",
    });
  });

  it("checks property strings key by key, as parse_property_string does", () => {
    expect(config({ mp0: "local-lvm:8" })).toEqual({
      mp0: fmt("format error\nmp0.mp: property is missing and it is not optional"),
    });
    expect(config({ mp0: "local-lvm:8,mp=/data,size=big" })).toEqual({
      mp0: fmt("format error\nmp0.size: invalid format - value does not look like a valid disk size: big\n"),
    });
    expect(config({ mp0: "local-lvm:8,mp=/data/../etc" })).toEqual({
      mp0: fmt("format error\nmp0.mp: invalid format - /data/../etc contains illegal character sequences\n"),
    });
    expect(config({ mp0: "local-lvm:8,mp=/data,backup=maybe" })).toEqual({
      mp0: fmt("format error\nmp0.backup: type check ('boolean') failed - got 'maybe'"),
    });
    expect(config({ rootfs: "local-lvm:8,colour=red" })).toEqual({
      rootfs: fmt("invalid key in comma-separated list property: colour"),
    });
    expect(config({ net0: "name=eth0,bridge=vmbr0,ip=dhcp,hwaddr=BC:24:11:00:00:01" })).toEqual({});
    expect(config({ net0: "name=eth0,hwaddr=01:00:00:00:00:01" })).toEqual({
      net0: fmt("format error\nnet0.hwaddr: invalid format - value does not look like a valid unicast MAC address\n"),
    });
  });

  it("knows mp0..mp255 and net0..net31 exist and mp256 / net32 do not", () => {
    const disks = prop("PUT /nodes/{node}/lxc/{vmid}/resize", "disk").enum!;
    expect(disks.at(-1)).toBe("mp255");
    expect(config({ mp255: "local-lvm:1,mp=/x", net31: "name=eth31" })).toEqual({});
    expect(config({ mp256: "local-lvm:1,mp=/x", net32: "name=eth32", mp01: "a:1,mp=/y" })).toEqual({
      mp256: NOT_DEFINED,
      net32: NOT_DEFINED,
      mp01: NOT_DEFINED,
    });
  });

  it("splits configid lists on PVE's separators and checks each item", () => {
    expect(config({ delete: "foo;bar, baz" })).toEqual({});
    expect(config({ delete: ["onboot", "mp0"] })).toEqual({}); // repeated keys join with ','
    expect(config({ delete: "foo;1bar" })).toEqual({ delete: fmt("invalid configuration ID '1bar'") });
  });

  it("checks config hostname, tags, nameservers and timezone", () => {
    expect(config({ hostname: "bad_host" })).toEqual({ hostname: fmt("value does not look like a valid DNS name") });
    const labels = ["a", "b", "c", "d"].map((c) => c.repeat(63)).join("."); // 255 characters
    expect(config({ hostname: labels })).toEqual({});
    expect(config({ hostname: `${labels}.e` })).toEqual({
      hostname: "value may only be 255 characters long",
    });
    expect(config({ tags: "sandbox;tmp", nameserver: "1.1.1.1 fe80::1%eth0" })).toEqual({});
    expect(config({ tags: "a;b/c" })).toEqual({ tags: fmt("invalid characters in tag") });
    expect(config({ nameserver: "1.1.1.256" })).toEqual({ nameserver: fmt("value does not look like a valid IP address") });
  });

  it.skipIf(!existsSync("/usr/share/zoneinfo/zone.tab"))("checks timezones against tzdata's zone.tab", () => {
    expect(config({ timezone: "host" })).toEqual({});
    expect(config({ timezone: "Europe/Vienna" })).toEqual({});
    expect(config({ timezone: "Mars/Olympus" })).toEqual({ timezone: fmt("invalid time zone 'Mars/Olympus'") });
  });

  it("refuses skiplock on shutdown but accepts it on stop", () => {
    const p = { ...CT, skiplock: "1" };
    expect(validateParams("POST /nodes/{node}/lxc/{vmid}/status/shutdown", p, form)).toEqual({ skiplock: NOT_DEFINED });
    expect(validateParams("POST /nodes/{node}/lxc/{vmid}/status/stop", p, form)).toEqual({});
  });

  it("refuses unknown parameters", () => {
    expect(clone({ memory: "512" })).toEqual({ memory: NOT_DEFINED });
  });

  it("lets any parameter through GET /version, whose schema has no properties (check_prop skips it)", () => {
    expect(validateParams("GET /version", { anything: "x" }, form)).toEqual({});
  });

  it("takes only 1/0 for booleans (check_type), and JSON true/false in a JSON body", () => {
    const stop = "POST /nodes/{node}/lxc/{vmid}/status/stop";
    expect(validateParams(stop, { ...CT, skiplock: "true" }, form)).toEqual({ skiplock: "type check ('boolean') failed - got 'true'" });
    expect(validateParams(stop, { ...CT, skiplock: true }, form)).toEqual({ skiplock: "type check ('boolean') failed - got 'true'" });
    expect(validateParams(stop, { ...CT, skiplock: "yes" }, json)).toEqual({ skiplock: "type check ('boolean') failed - got 'yes'" });
    expect(validateParams(stop, { ...CT, skiplock: true }, json)).toEqual({});
    expect(validateParams(stop, { ...CT, skiplock: 0 }, json)).toEqual({});
    expect(validateParams(stop, { ...CT, vmid: true }, json)).toEqual({ vmid: "type check ('integer') failed - got JSON::PP::Boolean" });
  });

  it("refuses a missing or malformed node and vmid", () => {
    expect(validateParams(CLONE, { vmid: "105", newid: "200" }, form)).toEqual({ node: "property is missing and it is not optional" });
    expect(clone({ node: "pve_1" })).toEqual({ node: fmt("value does not look like a valid node name") });
    expect(clone({ newid: "99" })).toEqual({ newid: fmt("value does not look like a valid VM ID") });
    expect(clone({ newid: "1e3" })).toEqual({ newid: "type check ('integer') failed - got '1e3'" });
  });

  it("checks resize sizes against the schema's anchored pattern", () => {
    const resize = (size: string) => validateParams("PUT /nodes/{node}/lxc/{vmid}/resize", { ...CT, disk: "rootfs", size }, form);
    expect(resize("+2G")).toEqual({});
    for (const size of ["2G extra", "x2G", "2Gx"]) expect(resize(size)).toEqual({ size: "value does not match the regex pattern" });
  });

  it("throws, rather than accepts, on a named format it has no port for", () => {
    expect(() => validateValue({ type: "string", format: "pve-calendar-event" }, "daily", form)).toThrow(/pve-calendar-event/);
    expect(() => validateParams("GET /nodes/{node}/qemu", {}, form)).toThrow(/no schema/);
  });
});

describe("endpointOf", () => {
  it("maps concrete request paths to their schema key and path parameters", () => {
    expect(endpointOf("PUT", "/nodes/pve1/lxc/105/config")).toEqual({ key: CONFIG, captures: CT });
    expect(endpointOf("DELETE", "/nodes/pve1/lxc/105")).toEqual({ key: "DELETE /nodes/{node}/lxc/{vmid}", captures: CT });
    expect(endpointOf("GET", "/nodes/pve1/tasks/UPID%3Apve1%3A00001234%3A/status")).toEqual({
      key: "GET /nodes/{node}/tasks/{upid}/status",
      captures: { node: "pve1", upid: "UPID:pve1:00001234:" },
    });
    expect(endpointOf("GET", "/pools?poolid=x")).toEqual({ key: "GET /pools", captures: {} });
    expect(endpointOf("get", "/api2/json/nodes/pve1/lxc")).toEqual({ key: "GET /nodes/{node}/lxc", captures: { node: "pve1" } });
    expect(endpointOf("POST", "/nodes/pve1/lxc/105/config")).toBeUndefined();
    expect(endpointOf("GET", "/nodes/pve1/qemu/105/config")).toBeUndefined();
  });
});

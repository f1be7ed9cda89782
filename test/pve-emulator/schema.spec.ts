/**
 * The emulator is exactly as strict as Proxmox: every route is validated with
 * PVE's published schema (test/pve-schema), so a route without a schema entry
 * cannot exist, and the findings of issue 18 (looser and stricter than PVE)
 * hold over HTTP. Answers follow the schema's return types too.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PVE_ENDPOINTS } from "../pve-schema/endpoints.js";
import { requireSchema } from "./schema.js";
import { ROUTES, routeKey } from "./server.js";
import { startEmulator, type Emulator } from "./index.js";
import { PveClient } from "./testing.js";

const FAST = { cloneMs: 50, startMs: 50, ipDelayMs: 50, stopMs: 10, destroyMs: 10, authFailDelayMs: 100 };

describe("pve emulator against Proxmox's published schema", () => {
  let emu: Emulator;
  let c: PveClient;
  beforeAll(async () => {
    emu = await startEmulator({ port: 0, timing: FAST, instance: "pve-emu-t-schema", subnet: "198.18.181.0/24" });
    c = new PveClient(emu.connection);
  });
  afterAll(async () => {
    await emu?.close();
  });
  const node = () => emu.connection.nodes[0]!;
  const tpl = () => emu.connection.templateId;
  const base = () => ({ newid: "150", full: "1", pool: emu.connection.pool });
  const clone = (form: Record<string, string>) => c.request("POST", `/nodes/${node()}/lxc/${tpl()}/clone`, { form: { ...base(), ...form } });
  const errorsOf = async (p: Promise<{ status: number; body: any }>) => {
    const a = await p;
    return a.status === 400 ? Object.keys(a.body.errors).sort() : a.status;
  };

  it("serves exactly the endpoints of the extract, and a route without one cannot be added", () => {
    expect(ROUTES.map((r) => routeKey(r.route)).sort()).toEqual([...PVE_ENDPOINTS].sort());
    expect(() => requireSchema("POST /nodes/{node}/lxc/{vmid}/migrate-everything")).toThrow(/no entry in test\/pve-schema/);
  });

  it("refuses what it used to accept and Proxmox does not", async () => {
    expect(await errorsOf(c.request("GET", "/pools?type=lxc"))).toEqual(["poolid"]);
    for (const hostname of ["-a", "a..b", ".a"]) expect(await errorsOf(clone({ hostname }))).toEqual(["hostname"]);
    expect(await errorsOf(clone({ pool: "no/such/pool/at/all" }))).toEqual(["pool"]);
    expect(await errorsOf(clone({ storage: "x" }))).toEqual(["storage"]);
    expect(await errorsOf(clone({ snapname: "1abc" }))).toEqual(["snapname"]);
    const config = `/nodes/${node()}/lxc/${tpl()}/config`;
    expect(await errorsOf(c.request("PUT", config, { form: { cores: "1", digest: "a".repeat(41) } }))).toEqual(["digest"]);
    expect(await errorsOf(c.request("PUT", config, { form: { hostname: "-bad" } }))).toEqual(["hostname"]);
    expect(await errorsOf(c.request("PUT", config, { form: { delete: "1x" } }))).toEqual(["delete"]);
    expect(await errorsOf(c.request("PUT", config, { form: { revert: "1x" } }))).toEqual(["revert"]);
    const fw = `/nodes/${node()}/lxc/${tpl()}/firewall/options`;
    expect(await errorsOf(c.request("PUT", fw, { form: { enable: "1", digest: "a".repeat(65) } }))).toEqual(["digest"]);
    // 64 characters is a well-formed firewall digest: refused for being stale, not malformed.
    expect(await errorsOf(c.request("PUT", fw, { form: { enable: "1", digest: "a".repeat(64) } }))).toBe(500);
    expect(await errorsOf(c.request("POST", `/nodes/${node()}/lxc/${tpl()}/status/shutdown`, { form: { skiplock: "1" } }))).toEqual(["skiplock"]);
    expect(emu.rejectedRequests().length).toBeGreaterThanOrEqual(13);
  });

  it("accepts what it used to refuse and Proxmox accepts", async () => {
    const a = await clone({ description: "d".repeat(9000), bwlimit: "1.5", hostname: "sbx-150-ab12cd34" });
    expect(a.status).toBe(200);
    await c.waitTask(node(), a.body.data);
    const config = `/nodes/${node()}/lxc/150/config`;
    const put = await c.request("PUT", config, { form: { arch: "amd64", onboot: "1", mp0: "local-lvm:8,mp=/data", startup: "order=2" } });
    expect([put.status, put.body?.errors]).toEqual([200, undefined]);
    expect(await c.data("GET", config)).toMatchObject({ arch: "amd64", onboot: 1, mp0: "local-lvm:8,mp=/data" });
    expect((await c.request("POST", `/nodes/${node()}/lxc/150/status/stop`, { form: { skiplock: "1" } })).status).toBe(500); // not running: past the schema
    await c.waitTask(node(), await c.data("DELETE", `/nodes/${node()}/lxc/150`));
  });

  it("answers with the schema's types: nextid an integer, cgroup-mode spelt with a dash", async () => {
    expect(await c.data("GET", "/cluster/nextid")).toBe(100);
    const [n] = await c.data("GET", "/cluster/resources?type=node");
    expect(n["cgroup-mode"]).toBe(2);
    expect(n.cgroup_mode).toBeUndefined();
  });
});

/**
 * The emulator's test-only additions for the lease benchmark: paper
 * containers (running CTs with no sandbox behind them) and the request
 * counter. The provider's own list/lease/destroy code runs against them, so
 * what sandboxd would do with a paper CT is what is checked.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { formatDescription } from "../../server/providers/proxmox/description.js";
import { ProxmoxProvider } from "../../server/providers/proxmox/index.js";
import { countsBetween, proxmoxConfigOf, startEmulator, type Emulator } from "./index.js";
import { paperAddress } from "./paper.js";
import { PveClient } from "./testing.js";

const FAST = { cloneMs: 50, startMs: 20, ipDelayMs: 20, stopMs: 10, destroyMs: 10, authFailDelayMs: 10 };
const SPEC = { cores: 1, memoryMiB: 256, diskGiB: 1, internet: false, labels: { bench: "paper" } };

describe("pve emulator paper containers and request counter", () => {
  let emu: Emulator;
  let c: PveClient;
  let provider: ProxmoxProvider;
  const ids = new Map<number, string>();
  const expiresAt = Date.now() + 60_000;
  beforeAll(async () => {
    emu = await startEmulator({ port: 0, timing: FAST, instance: "pve-emu-t-paper", subnet: "198.18.186.0/24" });
    c = new PveClient(emu.connection);
    const conn = emu.connection;
    provider = new ProxmoxProvider(proxmoxConfigOf(conn, { requestTimeoutMs: 10_000, createTimeoutMs: 60_000 }));
  });
  afterAll(async () => {
    await provider?.close();
    await emu?.close();
  });
  const node = () => emu.connection.nodes[0]!;

  it("adds running CTs to the pool with the caller's config and a made-up address", async () => {
    const vmids = emu.addPaperContainers(3, (vmid) => {
      const id = `sbx-${vmid}-${randomBytes(4).toString("hex")}`;
      ids.set(vmid, id);
      return { hostname: id, tags: "sandboxd", description: formatDescription({ id, spec: SPEC, createdAt: new Date(), lease: { expiresAt, ttlMs: 60_000 } }) };
    });
    expect(vmids).toEqual([100, 101, 102]);
    const pools = await c.data("GET", `/pools?poolid=${emu.connection.pool}`);
    expect(pools[0].members.map((m: any) => m.vmid)).toEqual(expect.arrayContaining(vmids));
    const id = ids.get(100)!;
    const conf = await c.data("GET", `/nodes/${node()}/lxc/100/config`);
    expect(conf).toMatchObject({ hostname: id, tags: "sandboxd", rootfs: expect.stringContaining("vm-100-disk-0") });
    expect(conf.template).toBeUndefined();
    expect(conf.description).toContain(`"id":"${id}"`);
    expect(await c.data("GET", `/nodes/${node()}/lxc/100/status/current`)).toMatchObject({ status: "running", name: id });
    const eth0 = (await c.data("GET", `/nodes/${node()}/lxc/100/interfaces`)).find((i: any) => i.name === "eth0");
    expect(eth0.inet).toBe(`${paperAddress(100)}/24`);
    expect(paperAddress(100)).toMatch(/^198\.19\.\d+\.\d+$/);
    expect(await c.data("GET", `/nodes/${node()}/lxc/100/firewall/options`)).toMatchObject({ enable: 1 });
  });

  it("the Proxmox provider lists them as its sandboxes, with their leases, and a lease write is a GET and a PUT of the config", async () => {
    await provider.start();
    const listed = await provider.list();
    expect(listed.map((h) => h.id).sort()).toEqual([...ids.values()].sort());
    const h = listed.find((x) => x.id === ids.get(101))!;
    expect(h).toMatchObject({ state: "running", address: paperAddress(101), lease: { expiresAt, ttlMs: 60_000 } });
    const before = emu.requestCount();
    await provider.extendLease(h.id, { expiresAt: expiresAt + 30_000, ttlMs: 60_000 });
    const d = countsBetween(before, emu.requestCount());
    expect(d).toEqual({ total: 2, byRoute: { "GET /nodes/{node}/lxc/{vmid}/config": 1, "PUT /nodes/{node}/lxc/{vmid}/config": 1 } });
    expect((await provider.readLease(h.id))?.expiresAt).toBe(expiresAt + 30_000);
  });

  it("stop and destroy work without touching the runtime", async () => {
    const create = vi.spyOn(emu.sandboxes, "create");
    const destroy = vi.spyOn(emu.sandboxes, "destroy");
    await provider.destroy(ids.get(102)!);
    expect(emu.containers().some((ct) => ct.vmid === 102)).toBe(false);
    const pools = await c.data("GET", `/pools?poolid=${emu.connection.pool}`);
    expect(pools[0].members.map((m: any) => m.vmid)).not.toContain(102);
    // A plain DELETE with force on a running paper CT, as a sweep of another tool might do.
    const upid = await c.data("DELETE", `/nodes/${node()}/lxc/100?purge=1&force=1`);
    expect((await c.waitTask(node(), upid)).exitstatus).toBe("OK");
    expect(emu.containers().some((ct) => ct.vmid === 100)).toBe(false);
    expect(create).not.toHaveBeenCalled();
    expect(destroy).not.toHaveBeenCalled();
  });

  it("counts every request by route on arrival, refused and unknown ones too", async () => {
    const before = emu.requestCount();
    await c.data("GET", "/version");
    await c.data("GET", "/version");
    expect((await c.request("GET", "/version", { auth: "PVEAPIToken=nobody@pve!x=bad" })).status).toBe(401);
    expect((await c.request("GET", "/nonsense")).status).toBe(501);
    await c.data("GET", `/nodes/${node()}/lxc/101/config`);
    expect(countsBetween(before, emu.requestCount())).toEqual({
      total: 5,
      byRoute: { "GET /version": 3, "GET (unmatched)": 1, "GET /nodes/{node}/lxc/{vmid}/config": 1 },
    });
    // A snapshot is a copy.
    const snap = emu.requestCount();
    await c.data("GET", "/version");
    expect(emu.requestCount().total).toBe(snap.total + 1);
    expect(snap.byRoute["GET /version"]).toBe((before.byRoute["GET /version"] ?? 0) + 3);
  });
});

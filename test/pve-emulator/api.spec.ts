/**
 * The emulator's wire behaviour without starting sandboxes: auth, permissions,
 * errors, clone locking, config, tasks, faults, several nodes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "./index.js";
import { PveClient } from "./testing.js";

const FAST = { cloneMs: 150, startMs: 50, ipDelayMs: 50, stopMs: 10, destroyMs: 10, authFailDelayMs: 100 };

describe("pve emulator API", () => {
  let emu: Emulator;
  let c: PveClient;
  beforeAll(async () => {
    emu = await startEmulator({ port: 0, nodes: 3, timing: FAST, instance: "pve-emu-t-api", subnet: "198.18.181.0/24" });
    c = new PveClient(emu.connection);
  });
  afterAll(async () => {
    await emu?.close();
  });
  const node = () => emu.connection.nodes[0]!;
  const tpl = () => emu.connection.templateId;
  const clone = async (newid: number, extra: Record<string, string> = {}) => {
    const upid = await c.data("POST", `/nodes/${node()}/lxc/${tpl()}/clone`, { form: { newid: String(newid), full: "1", pool: emu.connection.pool, ...extra } });
    return { upid: upid as string, done: c.waitTask(node(), upid) };
  };

  it("authenticates tokens: missing → 401 No ticket; bad → delayed 401 with an empty body", async () => {
    const none = await c.request("GET", "/cluster/nextid", { auth: null });
    expect([none.status, none.reason]).toEqual([401, "No ticket"]);
    const t0 = performance.now();
    const bad = await c.request("GET", "/cluster/nextid", { auth: `PVEAPIToken=${emu.connection.tokenId}=00000000-0000-0000-0000-000000000000` });
    expect([bad.status, bad.reason, bad.body]).toEqual([401, "Authentication failed!", undefined]);
    expect(bad.headers.connection).toBe("close");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
  });

  it("nextid is an integer (as the schema says) and reserves nothing", async () => {
    expect(await c.data("GET", "/version")).toMatchObject({ version: "9.1.3", release: "9.1" });
    expect(await c.data("GET", "/cluster/nextid")).toBe(100);
    expect(await c.data("GET", "/cluster/nextid")).toBe(100);
    const taken = await c.request("GET", `/cluster/nextid?vmid=${tpl()}`);
    expect(taken.status).toBe(400);
    expect(taken.body.errors.vmid).toBe(`VM ${tpl()} already exists`);
  });

  it("403 outside the pool comes before the existence check; 500 not found inside it", async () => {
    const r = await c.request("GET", `/nodes/${node()}/lxc/4242/config`);
    expect([r.status, r.reason]).toEqual([403, "Permission check failed (/vms/4242, VM.Audit)"]);
    expect(r.body).toEqual({ data: null, message: "Permission check failed (/vms/4242, VM.Audit)\n" });
  });

  it("errors: 501 for unknown routes and GET bodies, 400 for 'true' in a form, JSON booleans accepted", async () => {
    const post = await c.request("POST", `/nodes/${node()}/lxc/${tpl()}/config`);
    expect([post.status, post.reason]).toEqual([501, `Method 'POST /nodes/${node()}/lxc/${tpl()}/config' not implemented`]);
    const getBody = await c.request("GET", `/nodes/${node()}/lxc/${tpl()}/config`, { form: { a: "1" } });
    expect([getBody.status, getBody.reason]).toEqual([501, "Unexpected content for method 'GET'"]);
    const bool = await c.request("POST", `/nodes/${node()}/lxc/${tpl()}/clone`, { form: { newid: "150", full: "true" } });
    expect([bool.status, bool.reason]).toEqual([400, "Parameter verification failed."]);
    expect(bool.body.errors).toEqual({ full: "type check ('boolean') failed - got 'true'" });
  });

  it("clone: template locked (disk) meanwhile, new CT locked (create), joins the pool when the task ends, copies firewall", async () => {
    const a = await clone(100, { hostname: "sb-a" });
    expect(a.upid).toMatch(new RegExp(`^UPID:${node()}:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:vzclone:${tpl()}:${emu.connection.tokenId.replace("!", "!")}:$`));
    const second = await c.request("POST", `/nodes/${node()}/lxc/${tpl()}/clone`, { form: { newid: "101", full: "1", pool: emu.connection.pool } });
    expect([second.status, second.reason, second.body.message]).toEqual([500, "CT is locked (disk)", "CT is locked (disk)\n"]);
    expect(emu.containers().find((x) => x.vmid === 100)?.conf.lock).toBe("create");
    expect((await c.request("GET", `/nodes/${node()}/lxc/100/config`)).status).toBe(403); // not yet in the pool
    const start = await c.data("POST", `/nodes/${node()}/lxc/100/status/start`).catch((e: Error) => e.message);
    expect(start).toMatch(/403/);
    expect((await a.done).exitstatus).toBe("OK");
    const conf = await c.data("GET", `/nodes/${node()}/lxc/100/config`);
    expect(conf).toMatchObject({ hostname: "sb-a", description: "sandbox template\n" });
    expect(conf.lock).toBeUndefined();
    expect(conf.template).toBeUndefined();
    expect(conf.digest).toMatch(/^[0-9a-f]{40}$/);
    expect(await c.data("GET", `/nodes/${node()}/lxc/100/firewall/options`)).toMatchObject({ enable: 1, policy_out: "REJECT" });
    const pools = await c.data("GET", `/pools?poolid=${emu.connection.pool}`);
    expect(pools[0].members.map((m: any) => m.id)).toContain("lxc/100");
    const log = await c.request("GET", `/nodes/${node()}/tasks/${encodeURIComponent(a.upid)}/log`);
    expect(log.body.total).toBe(log.body.data.length);
    expect(log.body.data.at(-1)).toEqual({ n: log.body.total, t: "TASK OK" });
    const dup = await c.request("POST", `/nodes/${node()}/lxc/${tpl()}/clone`, { form: { newid: "100", full: "1", pool: emu.connection.pool } });
    expect([dup.status, dup.reason]).toEqual([500, `CT 100 already exists on node '${node()}'`]);
  });

  it("starting a CT that is still cloning gives a task whose exitstatus is 'CT is locked (create)'", async () => {
    const a = await clone(102);
    emu.emu.cluster.poolMembers.add(102); // as if a second token could see it: the lock is checked in the worker
    const upid = await c.data("POST", `/nodes/${node()}/lxc/102/status/start`);
    expect((await c.waitTask(node(), upid)).exitstatus).toBe("CT is locked (create)");
    await a.done;
  });

  it("config: tags normalised, invalid tag 400, digest changes and is checked, description gets its newline", async () => {
    const path = `/nodes/${node()}/lxc/100/config`;
    const before = (await c.data("GET", path)).digest;
    expect(await c.data("PUT", path, { form: { tags: "Zeta;alpha,beta alpha BETA", description: "hello" } })).toBeNull();
    const conf = await c.data("GET", path);
    expect(conf.tags).toBe("alpha;beta;zeta");
    expect(conf.description).toBe("hello\n");
    expect(conf.digest).not.toBe(before);
    const bad = await c.request("PUT", path, { json: { tags: "ok;no way!" } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.tags).toBe("invalid format - invalid characters in tag\n");
    const stale = await c.request("PUT", path, { form: { cores: "2", digest: before } });
    expect([stale.status, stale.reason]).toEqual([500, "detected modified configuration - file changed by other user? Try again."]);
    const empty = await c.request("PUT", path, {});
    expect([empty.status, empty.reason]).toEqual([500, "no options specified"]);
    const res = await c.data("GET", "/cluster/resources?type=vm");
    expect(res.find((r: any) => r.vmid === 100)).toMatchObject({ tags: "alpha;beta;zeta", pool: emu.connection.pool, node: node() });
  });

  it("stop of a stopped CT, destroy of a stopped CT, tasks of other nodes", async () => {
    const stop = await c.request("POST", `/nodes/${node()}/lxc/100/status/stop`);
    expect([stop.status, stop.reason]).toEqual([500, "CT 100 not running"]);
    const upid = await c.data("DELETE", `/nodes/${node()}/lxc/102?purge=1&force=1&destroy-unreferenced-disks=1`);
    expect(await c.request("GET", `/nodes/${emu.connection.nodes[1]}/tasks/${encodeURIComponent(upid)}/status`)).toMatchObject({ status: 400, reason: "no such task" });
    expect((await c.waitTask(node(), upid)).exitstatus).toBe("OK");
    expect(emu.containers().some((x) => x.vmid === 102)).toBe(false);
    expect((await c.request("GET", `/nodes/${node()}/tasks/nonsense/status`)).body.errors.upid).toBe("unable to parse worker upid");
  });

  it("several nodes: a local-storage template cannot be cloned to another node; per-node memory figures", async () => {
    const target = emu.connection.nodes[2]!;
    const refused = await c.request("POST", `/nodes/${node()}/lxc/${tpl()}/clone`, { form: { newid: "103", full: "1", pool: emu.connection.pool, target } });
    expect([refused.status, refused.reason]).toEqual([500, `can't clone CT to node '${target}' (CT uses local storage)`]);
    expect(emu.containers().some((x) => x.vmid === 103)).toBe(false);
    const nodes = await c.data("GET", "/cluster/resources?type=node");
    expect(nodes.map((n: any) => n.node).sort()).toEqual([...emu.connection.nodes].sort());
    for (const n of nodes) expect(n.maxmem).toBeGreaterThan(n.mem);
    expect(nodes[0]["cgroup-mode"]).toBe(2);
  });

  it("several nodes, shared storage: clone with target stays on the source node until the task ends, then moves", async () => {
    const shared = await startEmulator({
      port: 0, nodes: 3, timing: FAST, instance: "pve-emu-t-api2", subnet: "198.18.187.0/24", template: { storage: { id: "ceph", shared: true } },
    });
    try {
      const sc = new PveClient(shared.connection);
      const [source, , target] = shared.connection.nodes as [string, string, string];
      expect(await sc.data("GET", `/nodes/${source}/storage?storage=ceph`)).toMatchObject([{ storage: "ceph", shared: 1 }]);
      const upid = await sc.data("POST", `/nodes/${source}/lxc/${shared.connection.templateId}/clone`, { form: { newid: "103", full: "1", pool: shared.connection.pool, target } });
      expect(shared.containers().find((x) => x.vmid === 103)?.node).toBe(source);
      expect((await sc.waitTask(source, upid)).exitstatus).toBe("OK");
      expect(shared.containers().find((x) => x.vmid === 103)?.node).toBe(target);
      expect((await sc.data("GET", `/nodes/${target}/lxc`)).map((x: any) => x.vmid)).toEqual([103]);
      expect((await sc.data("GET", `/nodes/${target}/lxc/103/config`)).rootfs).toBe("ceph:vm-103-disk-0,size=1G");
      const wrong = await sc.request("GET", `/nodes/${source}/lxc/103/config`);
      expect(wrong.reason).toBe(`Configuration file 'nodes/${source}/lxc/103.conf' does not exist`);
    } finally {
      await shared.close();
    }
  });

  it("faults: 5xx rate, dropped connections, failing tasks, lock timeouts, all switchable at runtime", async () => {
    try {
      emu.setFaults({ errorRate: 1 });
      for (let i = 0; i < 3; i++) expect(await c.request("GET", "/cluster/nextid")).toMatchObject({ status: 596, reason: "Connection timed out" });
      emu.setFaults({ errorRate: 0, dropRate: 1 });
      await expect(c.request("GET", "/cluster/nextid")).rejects.toThrow(/socket hang up|ECONNRESET/);
      emu.setFaults({ dropRate: 0, taskFailRate: 1 });
      const a = await clone(104);
      expect((await a.done).exitstatus).toMatch(/^clone failed: /);
      expect(emu.containers().some((x) => x.vmid === 104)).toBe(false);
      emu.setFaults({ taskFailRate: 0, lockTimeoutRate: 1 });
      const locked = await c.request("PUT", `/nodes/${node()}/lxc/100/config`, { form: { cores: "2" } });
      expect([locked.status, locked.reason]).toEqual([500, "can't lock file '/run/lock/lxc/pve-config-100.lock' - got timeout"]);
      emu.setFaults({}, true);
      expect(await c.data("GET", "/cluster/nextid")).toBe(101);
    } finally {
      emu.setFaults({}, true);
    }
  });
});

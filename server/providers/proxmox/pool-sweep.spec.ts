/**
 * The pool sweep (listIds, findByRequest) on the PVE emulator with paper
 * containers (no sandbox behind them), in both pool-member shapes: "all"
 * (what PVE 8/9 send: name, template, status...) and "declared" (only what
 * the schema promises: id, node, type, vmid). With "declared" the sweep
 * cannot tell a reused vmid by its name, so it re-reads every member's config
 * on every sweep: correct, at one config read per member.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countsBetween, proxmoxConfigOf, startEmulator, type Emulator, type PaperConf } from "../../../test/pve-emulator/index.js";
import { paperAddress } from "../../../test/pve-emulator/paper.js";
import { PveClient as AdminClient } from "../../../test/pve-emulator/testing.js";
import type { CreateRequestKey, SandboxSpec } from "../provider.js";
import { formatDescription } from "./description.js";
import { ProxmoxProvider } from "./provider.js";

const FAST = { cloneMs: 150, startMs: 50, ipDelayMs: 50, stopMs: 10, destroyMs: 10, authFailDelayMs: 100 };
const SPEC: SandboxSpec = { cores: 1, memoryMiB: 256, diskGiB: 1, internet: false, labels: { owner: "pool-sweep-spec" } };
const CONFIG_READ = "GET /nodes/{node}/lxc/{vmid}/config";
const REQUEST: CreateRequestKey = { id: "req-1", fingerprint: "f" };

const newId = (vmid: number) => `sbx-${vmid}-${randomBytes(4).toString("hex")}`;

/** A paper CT as a finished create leaves it: our tag, hostname = id, our description. */
function ours(id: string, request?: CreateRequestKey): PaperConf {
  return { hostname: id, tags: "sandboxd", description: formatDescription({ id, spec: SPEC, createdAt: new Date(), ...(request ? { request } : {}) }) };
}

describe.each(["all", "declared"] as const)("pool sweep with pool members carrying %s fields", (fields) => {
  let emu: Emulator;
  let admin: AdminClient;
  const providers: ProxmoxProvider[] = [];
  /** vmid → id of our paper sandboxes. */
  const mine = new Map<number, string>();
  let withRequest: string;
  let foreign: number;
  let copied: number;
  let renamed: number;
  /** Pool members other than the template: each costs a config read when not cached. */
  let members: number;

  const started = async () => {
    const p = new ProxmoxProvider(proxmoxConfigOf(emu.connection, { requestTimeoutMs: 10_000 }));
    providers.push(p);
    await p.start();
    return p;
  };
  const node = () => emu.connection.nodes[0]!;
  const templateId = 9000;
  const templateLookalike = newId(templateId);

  beforeAll(async () => {
    emu = await startEmulator({
      port: 0, timing: FAST, instance: `pve-emu-t-pre-sweep-${fields}`, subnet: "198.18.188.0/24", poolMemberFields: fields,
      // A sandbox turned into the template: our tag, hostname and description. Only the template flag tells it apart.
      template: { vmid: templateId, hostname: templateLookalike, tags: "sandboxd", description: ours(templateLookalike).description as string },
    });
    admin = new AdminClient(emu.connection);
    for (const vmid of emu.addPaperContainers(3, (v) => ours(newId(v)))) mine.set(vmid, String(emu.containers().find((c) => c.vmid === vmid)!.conf.hostname));
    const [r] = emu.addPaperContainers(1, (v) => ours(newId(v), REQUEST));
    withRequest = String(emu.containers().find((c) => c.vmid === r)!.conf.hostname);
    mine.set(r!, withRequest);
    // Not ours: an untagged CT; a hand-made clone of the sandbox with the request (same hostname, tag and
    // description, but another vmid); a sandbox renamed by hand (its hostname no longer its id).
    foreign = emu.addPaperContainers(1, () => ({ hostname: "db-server", description: "someone else's" }))[0]!;
    copied = emu.addPaperContainers(1, () => ours(withRequest, REQUEST))[0]!;
    renamed = emu.addPaperContainers(1, (v) => ({ ...ours(newId(v)), hostname: "renamed-by-hand" }))[0]!;
    members = [...emu.emu.cluster.poolMembers].filter((v) => v !== templateId).length;
  });
  afterAll(async () => {
    for (const p of providers) await p.close();
    await emu?.close();
  });

  it("the emulator sends the member fields asked for", async () => {
    const pools = await admin.data("GET", `/pools?poolid=${emu.connection.pool}&type=lxc`);
    const m = pools[0].members.find((x: { vmid: number }) => x.vmid === foreign);
    if (fields === "declared") expect(m).toEqual({ id: `lxc/${foreign}`, node: node(), type: "lxc", vmid: foreign });
    else expect(m).toMatchObject({ vmid: foreign, name: "db-server", template: 0 });
    expect(pools[0].members.map((x: { vmid: number }) => x.vmid)).toContain(templateId);
  });

  it("listIds and list find our sandboxes only: never the template, a foreign CT, a clone of a sandbox or a renamed one", async () => {
    const p = await started();
    const want = [...mine.values()].sort();
    expect((await p.listIds()).sort()).toEqual(want);
    expect((await p.list()).map((h) => h.id).sort()).toEqual(want);
    expect((await p.listIds()).sort()).toEqual(want);
    const ids = await p.listIds();
    expect(ids).not.toContain(templateLookalike);
    expect(ids.some((id) => [foreign, copied, renamed].some((v) => id.startsWith(`sbx-${v}-`)))).toBe(false);
  });

  it(`a second sweep reads ${fields === "all" ? "no config" : "every member's config again"}`, async () => {
    const p = await started();
    const t0 = emu.requestCount();
    expect(await p.listIds()).toHaveLength(mine.size);
    const t1 = emu.requestCount();
    expect(await p.listIds()).toHaveLength(mine.size);
    const t2 = emu.requestCount();
    // First sweep: one pool listing, one config read per member but the template.
    expect(members).toBe(7);
    expect(countsBetween(t0, t1)).toEqual({ total: 1 + members, byRoute: { "GET /pools": 1, [CONFIG_READ]: members } });
    if (fields === "all") expect(countsBetween(t1, t2)).toEqual({ total: 1, byRoute: { "GET /pools": 1 } });
    else expect(countsBetween(t1, t2)).toEqual({ total: 1 + members, byRoute: { "GET /pools": 1, [CONFIG_READ]: members } });
  });

  it("findByRequest finds the sandbox made for a request id (not a copy of it); an unknown request id gives undefined", async () => {
    for (const p of [await started(), providers[0]!]) { // a cold provider and one that has swept already
      const h = await p.findByRequest(REQUEST.id);
      expect(h).toMatchObject({ id: withRequest, state: "running", request: REQUEST });
      expect(h!.address).toBe(paperAddress(Number(withRequest.split("-")[1])));
      expect(await p.findByRequest("req-unknown")).toBeUndefined();
    }
  });

  it("a vmid reused between two sweeps is noticed: the new CT's id is listed, not the old one", async () => {
    const p = await started();
    const [vmid, old] = [...mine].find(([, id]) => id !== withRequest)!;
    expect(await p.listIds()).toContain(old);
    const upid = await admin.data("DELETE", `/nodes/${node()}/lxc/${vmid}?purge=1&force=1`);
    expect((await admin.waitTask(node(), upid)).exitstatus).toBe("OK");
    let reused = "";
    expect(emu.addPaperContainers(1, (v) => ours((reused = newId(v))))).toEqual([vmid]); // PVE hands the freed vmid out again
    expect(reused).not.toBe(old);
    mine.set(vmid, reused);
    const ids = await p.listIds();
    expect(ids).toContain(reused);
    expect(ids).not.toContain(old);
    expect(ids.sort()).toEqual([...mine.values()].sort());
    expect(await p.get(old)).toBeUndefined();
    expect((await p.get(reused))?.id).toBe(reused);
  });

  it("a sandbox turned into a template by hand is never taken for a sandbox (the config says template)", async () => {
    const p = await started();
    const [vmid] = emu.addPaperContainers(1, (v) => ({ ...ours(newId(v)), template: 1 }));
    const id = String(emu.containers().find((c) => c.vmid === vmid)!.conf.hostname);
    expect(await p.listIds()).not.toContain(id);
    expect((await p.list()).map((h) => h.id)).not.toContain(id);
    expect(await p.get(id)).toBeUndefined();
  });

  it("sent nothing Proxmox's schema refuses", () => {
    expect(emu.rejectedRequests()).toEqual([]);
  });
});

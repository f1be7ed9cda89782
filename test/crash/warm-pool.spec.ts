/**
 * Issue 16: the warm pool across replicas and crashes. Replicas are sandboxd
 * processes (kill -9 is a real crash). Two replicas draining one pool never
 * hand a member out twice; a replica killed in the middle of claims and
 * refills loses nothing and hands nothing out twice: after the restart,
 * creates retried with their request ids find what the killed claims made,
 * every container is either a pool member or a listed sandbox (never both,
 * never neither), and what was half made is undone.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDescription } from "../../server/providers/proxmox/description.js";
import { POOL_LABEL } from "../../server/providers/provider.js";
import { startEmulator, type Emulator } from "../pve-emulator/index.js";
import { adminAddressOf, scrape, total } from "../fixtures/metrics.js";
import { EMULATOR_TIMING, eventually, hostObjects, localEnv, proxmoxEnv, purgeLocal, sandboxd, sleep, LOCAL, type Sandboxd } from "./harness.js";

const SHAPE = "1x256Mx1G"; // the crash harness's default sandbox
const POOL = { SANDBOXD_WARM_POOL: `${SHAPE}:4`, SANDBOXD_WARM_POOL_REFILL_CONCURRENCY: "2" };
const POOL_PVE = { instance: "sandboxd-t-pool-pve", subnet: "198.18.238.0/24" };

/** Creates `n` sandboxes at once through `via(i)`, each labelled and with a request id; ids of those that answered. */
async function burst(via: (i: number) => Sandboxd, n: number, tag: string): Promise<Array<string | undefined>> {
  return Promise.all(Array.from({ length: n }, (_, i) =>
    via(i).client.createSandbox({ labels: { [tag]: String(i) }, requestId: `${tag}-${i}` }).then((r) => r.sandbox!.id, () => undefined)));
}

/** Retries the creates that got no answer, through `server`, with the same labels and request ids. */
async function retry(server: Sandboxd, ids: Array<string | undefined>, tag: string): Promise<string[]> {
  const out: string[] = [];
  for (const [i, id] of ids.entries()) {
    out.push(id ?? (await server.client.createSandbox({ labels: { [tag]: String(i) }, requestId: `${tag}-${i}` })).sandbox!.id);
  }
  return out;
}

describe("warm pool: two replicas on one Proxmox, and a replica killed mid-claim", () => {
  let emulator: Emulator;
  const servers: Sandboxd[] = [];
  const start = async () => {
    const s = await sandboxd(proxmoxEnv(emulator.connection, POOL));
    servers.push(s);
    return s;
  };
  const described = () => emulator.containers().map((ct) => ({ ct, meta: parseDescription(ct.conf.description as string) })).filter((c) => c.meta);
  const members = () => described().filter((c) => c.meta!.spec.labels[POOL_LABEL] !== undefined);
  const labelled = (tag: string, i: number) => described().filter((c) => c.meta!.spec.labels[tag] === String(i));

  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, timing: { ...EMULATOR_TIMING, cloneMs: 200 }, ...POOL_PVE, pidsMax: 256 });
  });
  afterAll(async () => {
    await Promise.allSettled(servers.map((s) => s.kill()));
    const refused = emulator?.rejectedRequests() ?? [];
    await emulator?.close();
    expect(refused).toEqual([]);
  });

  it("hand each member out once across replicas, and lose nothing to a kill -9 in the middle of claims and refills", async () => {
    const r1 = await start();
    const r2 = await start();
    await eventually("the pool filled", 60_000, () => members().length >= 4);

    // 12 creates at once, alternating replicas: 12 distinct sandboxes, each carrying exactly its own create's labels.
    const first = await burst((i) => (i % 2 ? r1 : r2), 12, "a");
    expect(first.every(Boolean)).toBe(true);
    expect(new Set(first).size).toBe(12);
    for (let i = 0; i < 12; i++) expect(labelled("a", i).map((c) => c.meta!.id)).toEqual([first[i]]);

    // Claims in flight on r1 when it is killed; the clients retry what got no answer through r2.
    await eventually("the pool refilled", 60_000, () => members().length >= 4);
    const cut = burst(() => r1, 6, "b");
    await sleep(30);
    await r1.kill();
    const second = await retry(r2, await cut, "b");
    expect(new Set(second).size).toBe(6);
    for (let i = 0; i < 6; i++) expect(labelled("b", i).map((c) => c.meta!.id)).toEqual([second[i]]);

    // r1 back: every container is a member (never listed) or a listed sandbox; half-made ones are undone.
    const r1b = await start();
    let last = "";
    await eventually("every container a member or a listed sandbox", 120_000, async () => {
      const listed = new Set((await r2.client.listSandboxes({ pageSize: 1000 })).sandboxes.map((s) => s.id));
      const all = described();
      const memberIds = new Set(members().map((c) => c.meta!.id));
      const listedMembers = [...memberIds].filter((id) => listed.has(id));
      const neither = all.filter((c) => !memberIds.has(c.meta!.id) && !listed.has(c.meta!.id)).map((c) => `${c.meta!.id} ${JSON.stringify(c.meta!.spec.labels)}`);
      const undescribed = emulator.containers().filter((ct) => !ct.conf.template && !parseDescription(ct.conf.description as string)).map((ct) => ct.vmid);
      last = JSON.stringify({ listedMembers, neither, undescribed });
      return listedMembers.length === 0 && neither.length === 0 && undescribed.length === 0;
    }).catch((err: Error) => Promise.reject(new Error(`${err.message}: ${last}`)));
    for (const id of [...first, ...second]) await r1b.client.destroySandbox({ sandboxId: id! });
  }, 300_000);
});

describe("warm pool: the local runtime killed mid-claim and mid-refill", () => {
  let server: Sandboxd | undefined;
  beforeAll(() => purgeLocal(LOCAL));
  afterAll(async () => {
    await server?.kill();
    await purgeLocal(LOCAL);
  });

  it("after the restart the host holds exactly the pool and the sandboxes handed out, each once", async () => {
    const env = { ...localEnv(), ...POOL, SANDBOXD_LOCAL_PIDS_MAX: "256" };
    server = await sandboxd(env);
    const ready = async (s: Sandboxd) => total(await scrape(adminAddressOf(s.logs())), "sandboxd_warm_pool_ready", { shape: SHAPE });
    await eventually("the pool filled", 60_000, async () => (await ready(server!)) >= 4);
    const cut = burst(() => server!, 6, "c");
    await sleep(30);
    await server.kill(); // claims and the refills they started are cut off
    const answered = await cut;
    server = await sandboxd(env);
    const ids = await retry(server, answered, "c");
    expect(new Set(ids).size).toBe(6);
    const listed = (await server.client.listSandboxes({ pageSize: 1000 })).sandboxes;
    for (let i = 0; i < 6; i++) expect(listed.filter((s) => s.labels.c === String(i)).map((s) => s.id)).toEqual([ids[i]]);
    await eventually("the pool refilled", 60_000, async () => (await ready(server!)) === 4);
    const host = await hostObjects(LOCAL.instance);
    expect(host.stateDirs.length).toBe(listed.length + 4); // nothing leaked, nothing counted twice
    expect(host.netns.length).toBe(host.stateDirs.length);
  }, 300_000);
});

/**
 * Leases stored in the Proxmox CT description, on the PVE emulator (running
 * CTs are real local sandboxes): create stores the lease, a restarted provider
 * reads it back, two replicas extend one lease at once (digest compare-and-swap,
 * no lost update), listIds() undoes half-made containers only when old enough
 * and never touches unrecognised or foreign ones, and reaping (the real
 * LeaseTable + LeaseReaper) gets through 5xx, dropped connections and latency,
 * alone and with two replicas racing.
 */
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { proxmoxConfigOf, startEmulator, type Emulator, type FaultOptions } from "../../../test/pve-emulator/index.js";
import { digest } from "../../../test/pve-emulator/cluster.js";
import type { Call } from "../../../test/pve-emulator/context.js";
import { lxcRoutes } from "../../../test/pve-emulator/routes/lxc.js";
import { PveClient as AdminClient } from "../../../test/pve-emulator/testing.js";
import { isSandboxError } from "../../errors.js";
import { LeaseReaper } from "../../leases/lease-reaper.js";
import { LeaseTable } from "../../leases/lease-table.js";
import type { Logger } from "../local/options.js";
import type { SandboxSpec } from "../provider.js";
import { PveClient } from "./client.js";
import type { ProxmoxConfig } from "./config.js";
import { formatDescription, parseDescription } from "./description.js";
import { destroyVm } from "./lifecycle.js";
import { kindOf } from "./pool-sweep.js";
import { ProxmoxProvider } from "./provider.js";

const EMULATOR_TIMING = { cloneMs: 150, startMs: 50, ipDelayMs: 100, stopMs: 10, destroyMs: 10, authFailDelayMs: 100 };
const SPEC: SandboxSpec = { cores: 1, memoryMiB: 256, diskGiB: 2, internet: false, labels: { owner: "leases-spec" } };
const MINUTE = 60_000;

const route = (method: string, suffix: string) => lxcRoutes.find((r) => r.method === method && r.path.endsWith(suffix))!;
const putConfig = route("PUT", "/{vmid}/config");
const getConfig = route("GET", "/{vmid}/config");
const clone = route("POST", "/clone");
const real = { put: putConfig.handler, get: getConfig.handler, clone: clone.handler };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const vmidOfId = (id: string) => Number(id.split("-")[1]);

/** A logger that keeps every line, by level. */
function recorder(): Logger & { lines: { level: string; obj: object; msg: string }[] } {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, msg: msg ?? "" });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

describe("Proxmox leases on the emulator", () => {
  let emu: Emulator;
  let admin: AdminClient;
  let cleaner: PveClient;
  /** Every provider made by a test; closed after it. */
  const providers: ProxmoxProvider[] = [];
  /** Every PUT …/config the emulator handled: vmid, whether it applied, the stored lease after it. */
  let puts: { vmid: number; ok: boolean; error?: string; expiresAt?: number }[] = [];
  /** A test may hold a PUT …/config (the create's tag/description write) to freeze a create half-way. */
  let holdPut: ((call: Call) => Promise<void> | void) | undefined;

  const cfg = (over: Partial<ProxmoxConfig> = {}): ProxmoxConfig => proxmoxConfigOf(emu.connection, { ...over });

  const replica = async (over: Partial<ProxmoxConfig> = {}, logger?: Logger) => {
    const p = new ProxmoxProvider(cfg(over), { logger });
    providers.push(p);
    await p.start();
    return p;
  };
  const ct = (vmid: number) => emu.containers().find((c) => c.vmid === vmid);
  const leftovers = () => emu.containers().filter((c) => c.vmid !== emu.connection.templateId).map((c) => c.vmid);
  /** The local sandboxes behind running CTs, by vmid. */
  const runtimeVmids = async () => (await emu.sandboxes.list()).map((h) => Number(h.spec.labels["pve-vmid"]));
  const storedLease = (vmid: number) => parseDescription(String(ct(vmid)?.conf.description ?? ""))?.lease;
  const node = () => emu.connection.nodes[0]!;

  /** Clones the template into the pool over the API, as an operator or a killed sandboxd would; nothing is started. */
  async function cloneTemplate(o: { hostname?: string; description?: string; tags?: string; vmid?: number } = {}): Promise<number> {
    const c = emu.connection;
    const vmid = o.vmid ?? Number(await admin.data("GET", "/cluster/nextid"));
    const form: Record<string, string> = { newid: String(vmid), full: "1", pool: c.pool };
    if (o.hostname !== undefined) form.hostname = o.hostname;
    if (o.description !== undefined) form.description = o.description;
    const upid = await admin.data("POST", `/nodes/${node()}/lxc/${c.templateId}/clone`, { form });
    expect((await admin.waitTask(node(), upid)).exitstatus).toBe("OK");
    if (o.tags !== undefined) await admin.data("PUT", `/nodes/${node()}/lxc/${vmid}/config`, { form: { tags: o.tags } });
    return vmid;
  }

  /** A sandboxd killed between clone and tagging: our description and hostname, no tag, never started. */
  async function halfMade(createdAt: Date): Promise<{ vmid: number; id: string }> {
    const vmid = Number(await admin.data("GET", "/cluster/nextid"));
    const id = `sbx-${vmid}-${randomBytes(4).toString("hex")}`;
    const description = formatDescription({ id, spec: SPEC, createdAt, lease: { expiresAt: Date.now() + MINUTE, ttlMs: MINUTE } });
    await cloneTemplate({ vmid, hostname: id, description });
    return { vmid, id };
  }

  beforeAll(async () => {
    emu = await startEmulator({ port: 0, timing: EMULATOR_TIMING, instance: "sandboxd-t-pve-lease", subnet: "198.18.185.0/24" });
    admin = new AdminClient(emu.connection);
    const c = emu.connection;
    cleaner = new PveClient({ url: c.url, tokenId: c.tokenId, secret: c.secret, caFile: c.caFile, connectTimeoutMs: 5000, requestTimeoutMs: 15_000 });
    putConfig.handler = async (call) => {
      const vmid = Number(call.p.vmid);
      await holdPut?.(call);
      try {
        const out = await real.put(call);
        puts.push({ vmid, ok: true, expiresAt: storedLease(vmid)?.expiresAt });
        return out;
      } catch (e) {
        puts.push({ vmid, ok: false, error: (e as Error).message });
        throw e;
      }
    };
  });

  afterEach(async () => {
    emu.setFaults({}, true);
    emu.setTiming(EMULATOR_TIMING);
    holdPut = undefined;
    getConfig.handler = real.get;
    clone.handler = real.clone;
    await Promise.all(providers.splice(0).map((p) => p.close()));
    // A failed test may leave CTs behind; the next test starts from an empty pool.
    for (const vmid of leftovers()) await destroyVm(cleaner, ct(vmid)!.node, vmid, Date.now() + 30_000);
    puts = [];
  });

  afterAll(async () => {
    putConfig.handler = real.put;
    getConfig.handler = real.get;
    clone.handler = real.clone;
    await cleaner?.close();
    const refused = emu?.rejectedRequests() ?? [];
    await emu?.close();
    expect(refused).toEqual([]); // nothing Proxmox's published schema refuses
  });

  it("create stores the lease in the description; readLease and a restarted provider read it back", async () => {
    const p = await replica();
    const asked = { expiresAt: Date.now() + 10 * MINUTE + 123, ttlMs: 10 * MINUTE };
    const before = Date.now();
    const h = await p.create(SPEC, { lease: asked });
    // The lease is restarted when the sandbox is ready: the TTL counts from then.
    const lease = h.lease!;
    expect(lease.ttlMs).toBe(asked.ttlMs);
    expect(lease.expiresAt).toBeGreaterThanOrEqual(before + asked.ttlMs);
    expect(lease.expiresAt).toBeLessThanOrEqual(Date.now() + asked.ttlMs);
    const bare = await p.create(SPEC); // as made by a sandboxd without leases
    expect(bare.lease).toBeUndefined();

    const meta = parseDescription(String(ct(vmidOfId(h.id))!.conf.description));
    expect(meta).toMatchObject({ id: h.id, spec: SPEC, lease });
    expect(String(ct(vmidOfId(h.id))!.conf.tags)).toContain("sandboxd");
    expect(await p.readLease(h.id)).toEqual(lease);
    expect(await p.readLease(bare.id)).toBeNull();

    await p.close();
    const restarted = await replica();
    expect((await restarted.listIds()).sort()).toEqual([h.id, bare.id].sort());
    const listed = await restarted.list();
    expect(listed.find((x) => x.id === h.id)).toMatchObject({ id: h.id, state: "running", address: h.address, lease, spec: SPEC });
    expect(listed.find((x) => x.id === bare.id)?.lease).toBeUndefined();
    expect((await restarted.get(h.id))?.lease).toEqual(lease);
    expect(await restarted.readLease(h.id)).toEqual(lease);

    await restarted.destroy(h.id);
    await restarted.destroy(bare.id);
    expect(await restarted.readLease(h.id)).toBeUndefined();
    expect(leftovers()).toEqual([]);
  });

  it("two replicas extending one lease at once: the stored expiry is always the latest ever asked for", async () => {
    const a = await replica();
    const b = await replica();
    const base = Date.now() + 60 * MINUTE;
    const h = await a.create(SPEC, { lease: { expiresAt: base, ttlMs: MINUTE } });
    const vmid = vmidOfId(h.id);
    const before = parseDescription(String(ct(vmid)!.conf.description))!;
    expect(await b.listIds()).toEqual([h.id]);
    puts = [];

    // The first config read of each replica in a round waits for the other's, so both read the
    // same digest and both write: one PUT must lose to the digest check ("detected modified configuration").
    let round: { arrivals: number; release?: () => void } = { arrivals: 0 };
    getConfig.handler = async (call) => {
      if (Number(call.p.vmid) === vmid && round.arrivals < 2) {
        const r = round;
        if (++r.arrivals === 1) await new Promise<void>((res) => ((r.release = res), setTimeout(res, 2000)));
        else r.release?.();
      }
      return real.get(call);
    };

    let max = base;
    let bothWrote = 0;
    const ROUNDS = 20;
    for (let r = 0; r < ROUNDS; r++) {
      round = { arrivals: 0 };
      const step = base + (r + 1) * 1000;
      const wantA = r % 4 === 3 ? base - r * 100 : step + 1 + Math.floor(Math.random() * 998); // every 4th round A asks for less
      const wantB = step + 1 + Math.floor(Math.random() * 998);
      if (wantA > max && wantB > max) bothWrote++;
      const [gotA, gotB] = await Promise.all([
        a.extendLease(h.id, { expiresAt: wantA, ttlMs: MINUTE }),
        b.extendLease(h.id, { expiresAt: wantB, ttlMs: MINUTE }),
      ]);
      max = Math.max(max, wantA, wantB);
      expect(gotA.expiresAt).toBeGreaterThanOrEqual(wantA);
      expect(gotB.expiresAt).toBeGreaterThanOrEqual(wantB);
      expect(storedLease(vmid)?.expiresAt).toBe(max);
      expect((await a.readLease(h.id))?.expiresAt).toBe(max);
      expect((await b.readLease(h.id))?.expiresAt).toBe(max);
    }
    getConfig.handler = real.get;

    const mine = puts.filter((x) => x.vmid === vmid);
    const applied = mine.filter((x) => x.ok).map((x) => x.expiresAt!);
    const conflicts = mine.filter((x) => !x.ok);
    // Every applied write raised the stored expiry: none ever went backwards (no lost update).
    for (let i = 1; i < applied.length; i++) expect(applied[i]).toBeGreaterThan(applied[i - 1]!);
    expect(applied.at(-1)).toBe(max);
    expect(applied.length).toBeLessThanOrEqual(2 * ROUNDS);
    expect(conflicts.every((x) => /detected modified configuration/.test(x.error!))).toBe(true);
    expect(conflicts.length).toBe(bothWrote);
    expect(bothWrote).toBeGreaterThan(0);
    // The lease writes left the rest of the description and config alone.
    const after = parseDescription(String(ct(vmid)!.conf.description))!;
    expect(after).toEqual({ ...before, lease: { expiresAt: max, ttlMs: MINUTE } });
    expect(String(ct(vmid)!.conf.tags)).toContain("sandboxd");
    expect(ct(vmid)!.conf.hostname).toBe(h.id);

    await Promise.all([a.destroy(h.id), b.destroy(h.id)]);
    expect(leftovers()).toEqual([]);
  });

  it("extendLease with an earlier (or equal) expiry writes nothing and returns what is stored", async () => {
    const p = await replica();
    const h = await p.create(SPEC, { lease: { expiresAt: Date.now() + 30 * MINUTE, ttlMs: 30 * MINUTE } });
    const lease = h.lease!;
    const vmid = vmidOfId(h.id);
    const digestBefore = digest(ct(vmid)!.conf);
    puts = [];

    expect(await p.extendLease(h.id, { expiresAt: lease.expiresAt - 5000, ttlMs: MINUTE })).toEqual(lease);
    expect(await p.extendLease(h.id, { expiresAt: lease.expiresAt, ttlMs: MINUTE })).toEqual(lease);
    expect(puts).toEqual([]);
    expect(digest(ct(vmid)!.conf)).toBe(digestBefore);
    expect((await admin.data("GET", `/nodes/${node()}/lxc/${vmid}/config`)).digest).toBe(digestBefore);

    const later = { expiresAt: lease.expiresAt + 1, ttlMs: MINUTE };
    expect(await p.extendLease(h.id, later)).toEqual(later);
    expect(puts.map((x) => x.ok)).toEqual([true]);
    expect(digest(ct(vmid)!.conf)).not.toBe(digestBefore);
    expect(await p.readLease(h.id)).toEqual(later);

    await expect(p.extendLease(`sbx-${vmid + 500}-abcdef01`, later)).rejects.toSatisfy((e) => isSandboxError(e, "not_found"));
    await expect(p.extendLease(`sbx-${vmid}-00000000`, later)).rejects.toSatisfy((e) => isSandboxError(e, "not_found")); // right vmid, wrong id
    await p.destroy(h.id);
    await expect(p.extendLease(h.id, later)).rejects.toSatisfy((e) => isSandboxError(e, "not_found"));
    expect(leftovers()).toEqual([]);
  });

  it("listIds undoes a half-made container only once it is older than a create may take", async () => {
    const short = await replica({ createTimeoutMs: 2000 }); // undoes after 2000 + min(60 s, 2000) = 4 s
    const patient = await replica(); // createTimeoutMs 90 s: undoes after 150 s
    const old = await halfMade(new Date(Date.now() - 10_000));
    const youngAt = Date.now();
    const young = await halfMade(new Date(youngAt));
    for (const x of [old, young]) expect(kindOf(x.vmid, ct(x.vmid)!.conf, "sandboxd").kind).toBe("half-made");

    expect(await patient.listIds()).toEqual([]);
    expect(ct(old.vmid)).toBeDefined(); // 10 s old is young for a 90 s create timeout
    expect(await patient.readLease(old.id)).toBeUndefined(); // not a finished sandbox
    await patient.destroy(old.id); // nor one a destroy may touch
    expect(ct(old.vmid)).toBeDefined();

    expect(await short.listIds()).toEqual([]);
    expect(ct(old.vmid)).toBeUndefined();
    expect(ct(young.vmid)).toBeDefined();

    // Poll: the young one stays while younger than 4 s and goes on the first sweep after.
    for (;;) {
      const start = Date.now();
      expect(await short.listIds()).toEqual([]);
      const end = Date.now();
      if (!ct(young.vmid)) {
        expect(end).toBeGreaterThan(youngAt + 4000);
        break;
      }
      expect(start).toBeLessThanOrEqual(youngAt + 4000 + 100);
      await sleep(250);
    }
    expect(leftovers()).toEqual([]);
    expect(await runtimeVmids()).toEqual([]);
  });

  it("listIds leaves alone a half-made container that a create of this provider is working on", async () => {
    // The clone's description is backdated an hour (a skewed clock), so by age alone it is overdue to be undone.
    clone.handler = (call) => {
      const meta = parseDescription(call.p.description === undefined ? undefined : String(call.p.description));
      if (meta) call.p.description = formatDescription({ ...meta, createdAt: new Date(Date.now() - 60 * MINUTE) });
      return real.clone(call);
    };
    /** Holds the create's last config write (the tag) until released: the CT is then in the pool, running, untagged. */
    const hold = () => {
      let release!: () => void;
      let reached!: (vmid: number) => void;
      const at = new Promise<number>((r) => (reached = r));
      const gate = new Promise<void>((r) => (release = r));
      holdPut = async (call) => {
        // The create's own config writes rewrite the description: keep it backdated.
        const meta = parseDescription(call.p.description === undefined ? undefined : String(call.p.description));
        if (meta) call.p.description = formatDescription({ ...meta, createdAt: new Date(Date.now() - 60 * MINUTE) });
        if (call.p.tags === undefined) return;
        holdPut = undefined;
        reached(Number(call.p.vmid));
        await gate;
      };
      return { at, release };
    };
    const creator = await replica({ createTimeoutMs: 30_000 });
    const other = await replica({ createTimeoutMs: 30_000 });

    let gate = hold();
    const lease = { expiresAt: Date.now() + 10 * MINUTE, ttlMs: 10 * MINUTE };
    const creating = creator.create(SPEC, { lease });
    let vmid = await gate.at;
    expect(kindOf(vmid, ct(vmid)!.conf, "sandboxd").kind).toBe("half-made");
    expect(await creator.listIds()).toEqual([]);
    expect((await creator.list()).map((x) => x.id)).toEqual([]);
    expect(ct(vmid)).toBeDefined();
    gate.release();
    const h = await creating;
    expect(vmidOfId(h.id)).toBe(vmid);
    expect(await creator.listIds()).toEqual([h.id]);
    expect(await other.listIds()).toEqual([h.id]);
    expect(await creator.readLease(h.id)).toEqual(h.lease);
    await creator.destroy(h.id);

    // Control: another replica, which is not creating it, undoes the same overdue half-made CT.
    gate = hold();
    const failing = creator.create(SPEC, { lease }).then(() => undefined, (e: unknown) => e);
    vmid = await gate.at;
    expect(await other.listIds()).toEqual([]);
    expect(ct(vmid)).toBeUndefined();
    gate.release();
    expect(isSandboxError(await failing)).toBe(true);
    expect(leftovers()).toEqual([]);
    expect(await runtimeVmids()).toEqual([]);
  });

  it("never touches (nor lists) unrecognised or foreign containers, including a clone of a sandbox", async () => {
    const p = await replica();
    const short = await replica({ createTimeoutMs: 2000 });
    const handMade = await cloneTemplate({ description: "hand made", tags: "sandboxd" }); // unrecognised
    const foreign = await cloneTemplate(); // no tag, the template's description
    const mangled = await cloneTemplate({ description: "Managed by sandboxd: destroyed automatically, do not edit.\nsandboxd-meta:{not json", tags: "sandboxd" });
    const h = await p.create(SPEC, { lease: { expiresAt: Date.now() + MINUTE, ttlMs: MINUTE } });
    const hv = vmidOfId(h.id);

    // An operator clones the sandbox (slowly): the sandbox is locked ("disk") meanwhile, the copy carries
    // its tag, hostname and description. A sandbox older than the sweep's limit must survive a sweep
    // of a replica that has not seen it before.
    await sleep(Math.max(0, h.createdAt.getTime() + 4500 - Date.now()));
    emu.setTiming({ cloneMs: 1500 });
    const copy = Number(await admin.data("GET", "/cluster/nextid"));
    const upid = await admin.data("POST", `/nodes/${node()}/lxc/${hv}/clone`, { form: { newid: String(copy), full: "1", pool: emu.connection.pool } });
    expect(ct(hv)!.conf.lock).toBe("disk");
    const fresh = await replica({ createTimeoutMs: 2000 });
    const during = await fresh.listIds();
    expect(ct(hv)).toBeDefined();
    expect(ct(hv)!.conf.lock).toBe("disk"); // the sweep did not wait for the lock either
    expect(during).toEqual([h.id]);
    expect((await admin.waitTask(node(), upid)).exitstatus).toBe("OK");
    emu.setTiming(EMULATOR_TIMING);
    expect(ct(copy)!.conf).toMatchObject({ hostname: h.id, description: ct(hv)!.conf.description });

    for (const r of [p, short, fresh]) {
      expect(await r.listIds()).toEqual([h.id]);
      expect((await r.list()).map((x) => x.id)).toEqual([h.id]);
    }
    const others = [handMade, foreign, mangled, copy];
    for (const vmid of others) {
      expect(kindOf(vmid, ct(vmid)!.conf, "sandboxd").kind).toBe(vmid === foreign ? "foreign" : "unrecognised");
      const guess = `sbx-${vmid}-deadbeef`;
      expect(await p.readLease(guess)).toBeUndefined();
      await p.destroy(guess);
      await expect(p.extendLease(guess, { expiresAt: Date.now() + MINUTE, ttlMs: MINUTE })).rejects.toSatisfy((e) => isSandboxError(e, "not_found"));
    }
    await p.destroy(h.id);
    expect(await short.listIds()).toEqual([]);
    expect(await fresh.listIds()).toEqual([]);
    expect(leftovers().sort()).toEqual(others.sort());
    const descriptions = others.map((v) => ct(v)!.conf.description);
    expect(descriptions[0]).toBe("hand made");
    for (const vmid of others) await destroyVm(cleaner, node(), vmid, Date.now() + 30_000);
    expect(leftovers()).toEqual([]);
  });

  it("a replica that saw a sandbox mid-destroy lists it again when that destroy failed", async () => {
    const a = await replica();
    const h = await a.create(SPEC, { lease: { expiresAt: Date.now() + MINUTE, ttlMs: MINUTE } });
    const vmid = vmidOfId(h.id);
    // Someone's destroy task fails (the config comes back) while a new replica sweeps the pool.
    emu.setTiming({ destroyMs: 800 });
    emu.setFaults({ taskFailRate: 1 });
    const upid = await admin.data("DELETE", `/nodes/${node()}/lxc/${vmid}?purge=1&force=1`);
    expect(ct(vmid)!.conf.lock).toBe("destroyed");
    const c = await replica();
    expect(await c.listIds()).toEqual([]);
    expect((await admin.waitTask(node(), upid)).exitstatus).toMatch(/Logical volume .* in use/);
    emu.setFaults({}, true);
    expect(ct(vmid)!.conf.lock).toBeUndefined();
    expect(await c.listIds()).toEqual([h.id]);
    await c.destroy(h.id);
    expect(leftovers()).toEqual([]);
  });

  it("a vmid reused between two sweeps (PVE hands freed ids out at once) is read again", async () => {
    const a = await replica();
    const b = await replica();
    const x = await a.create(SPEC, { lease: { expiresAt: Date.now() + MINUTE, ttlMs: MINUTE } });
    const foreign = await cloneTemplate();
    expect(await b.listIds()).toEqual([x.id]); // b's verdicts: x ours, `foreign` not to be touched
    await a.destroy(x.id);
    await destroyVm(cleaner, node(), foreign, Date.now() + 30_000);
    const [y, z] = [await a.create(SPEC), await a.create(SPEC)];
    expect([vmidOfId(y.id), vmidOfId(z.id)].sort()).toEqual([vmidOfId(x.id), foreign].sort());
    expect((await b.listIds()).sort()).toEqual([y.id, z.id].sort());
    expect(await b.readLease(x.id)).toBeUndefined();
    await Promise.all([b.destroy(y.id), b.destroy(z.id)]);
    expect(leftovers()).toEqual([]);
  });

  describe("reaping with faults", () => {
    const runs: [string, Partial<FaultOptions>][] = [
      ["50% 500 Internal Server Error", { errorRate: 0.5, errorStatus: 500 }],
      ["50% 596 Connection timed out", { errorRate: 0.5, errorStatus: 596 }],
      ["30% dropped connections", { dropRate: 0.3 }],
      ["200 ms latency", { latencyMs: 200 }],
    ];
    for (const [name, faults] of runs) {
      it(`the LeaseReaper destroys expired sandboxes through ${name}; destroy stays idempotent`, async () => {
        const log = recorder();
        const p = await replica({}, log);
        const hs = await Promise.all([0, 1].map(() => p.create(SPEC, { lease: { expiresAt: Date.now() + 300, ttlMs: 300 } })));
        const vmids = hs.map((h) => vmidOfId(h.id));
        expect((await runtimeVmids()).sort()).toEqual([...vmids].sort());

        const table = new LeaseTable(p);
        for (const h of hs) table.track(h.id, h.lease!);
        const reaperLog = recorder();
        const destroyed: string[] = [];
        const forgotten: string[] = []; // "gone already": an earlier attempt destroyed it, then failed on a lost answer
        const reaper = new LeaseReaper(table, {
          destroy: async (id) => {
            await p.destroy(id);
            destroyed.push(id);
            table.delete(id);
          },
          forget: (id) => {
            forgotten.push(id);
            table.delete(id);
          },
          logger: reaperLog,
        }, 50);
        await sleep(350);
        emu.setFaults(faults, true);
        const deadline = Date.now() + 90_000;
        while (table.ids().length > 0) {
          expect(Date.now()).toBeLessThan(deadline);
          await reaper.pass();
          await sleep(50);
        }
        if (faults.errorRate || faults.dropRate) {
          // The faults were met (and got through): the client retried, or a reap attempt failed and was retried.
          const retried = log.lines.filter((l) => l.msg === "proxmox call retried").length;
          expect(retried + reaperLog.lines.filter((l) => l.level === "error").length).toBeGreaterThan(0);
        }
        emu.setFaults({}, true);
        expect([...destroyed, ...forgotten].sort()).toEqual(hs.map((h) => h.id).sort());
        for (const vmid of vmids) expect(ct(vmid)).toBeUndefined();
        expect(await runtimeVmids()).toEqual([]);
        for (const h of hs) {
          await p.destroy(h.id);
          expect(await p.readLease(h.id)).toBeUndefined();
          expect(await p.get(h.id)).toBeUndefined();
        }
        expect(await p.listIds()).toEqual([]);
        expect(leftovers()).toEqual([]);
      });
    }
  });

  it("two replicas destroying the same sandbox at once both succeed", async () => {
    const a = await replica();
    const b = await replica();
    const hs = await Promise.all([0, 1, 2, 3].map(() => a.create(SPEC, { lease: { expiresAt: Date.now() + 200, ttlMs: 200 } })));
    expect((await b.listIds()).sort()).toEqual(hs.map((h) => h.id).sort());
    // B joins at different moments of A's destroy: before it, during the stop, during the destroy task.
    const offsets = [0, 5, 20, 40];
    emu.setTiming({ stopMs: 30, destroyMs: 30 });
    const results = await Promise.allSettled(hs.flatMap((h, i) => [a.destroy(h.id), sleep(offsets[i]!).then(() => b.destroy(h.id))]));
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    for (const h of hs) {
      expect(ct(vmidOfId(h.id))).toBeUndefined();
      expect(await a.readLease(h.id)).toBeUndefined();
      expect(await b.readLease(h.id)).toBeUndefined();
    }
    expect(await runtimeVmids()).toEqual([]);
    expect(await a.listIds()).toEqual([]);
    expect(await b.listIds()).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  it("two replicas' reapers reaping the same expired sandboxes: no errors, each destroyed once and forgotten by both", async () => {
    const a = await replica();
    const b = await replica();
    const hs = await Promise.all([0, 1].map(() => a.create(SPEC, { lease: { expiresAt: Date.now() + 200, ttlMs: 200 } })));
    const reapers = [a, b].map((p) => {
      const table = new LeaseTable(p);
      for (const h of hs) table.track(h.id, h.lease!);
      const log = recorder();
      const reaper = new LeaseReaper(table, {
        destroy: async (id) => {
          await p.destroy(id);
          table.delete(id);
        },
        forget: (id) => table.delete(id),
        logger: log,
      }, 50);
      return { table, reaper, log };
    });
    await sleep(250);
    const deadline = Date.now() + 60_000;
    while (reapers.some((r) => r.table.ids().length > 0)) {
      expect(Date.now()).toBeLessThan(deadline);
      await Promise.all(reapers.map((r) => r.reaper.pass()));
      await sleep(20);
    }
    for (const r of reapers) expect(r.log.lines.filter((l) => l.level === "error")).toEqual([]);
    for (const h of hs) expect(ct(vmidOfId(h.id))).toBeUndefined();
    expect(await runtimeVmids()).toEqual([]);
    expect(leftovers()).toEqual([]);
  });
});

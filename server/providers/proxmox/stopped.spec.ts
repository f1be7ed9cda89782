/**
 * A CT stopped outside sandboxd (an operator's `pct stop`, a node restart), on
 * the PVE emulator: the provider reports it "stopped" with no address; the
 * manager refuses Exec/Upload/Download on it (failed_precondition), shows it
 * stopped in GetSandbox, and still destroys it. Checked both on the replica
 * that made the sandbox and on one that only finds it (a restarted sandboxd).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { proxmoxConfigOf, startEmulator, type Emulator } from "../../../test/pve-emulator/index.js";
import { PveClient as AdminClient } from "../../../test/pve-emulator/testing.js";
import { isSandboxError } from "../../errors.js";
import { SandboxManager } from "../../sandboxes/manager.js";
import { SessionRegistry } from "../../ssh/session-registry.js";
import { execCollect } from "../../ssh/exec-collect.js";
import { silentLogger } from "../local/options.js";
import type { SandboxSpec } from "../provider.js";
import { ProxmoxProvider } from "./provider.js";

const FAST = { cloneMs: 150, startMs: 50, ipDelayMs: 50, stopMs: 10, destroyMs: 10, authFailDelayMs: 100 };
const SPEC: SandboxSpec = { cores: 1, memoryMiB: 256, diskGiB: 1, internet: false, labels: { owner: "stopped-spec" } };
const LEASE = { defaultTtlMs: 10 * 60_000, maxTtlMs: 3600_000, reapIntervalMs: 60_000, syncIntervalMs: 60_000 };
const DEFAULTS = { cores: 1, memoryMiB: 256, diskGiB: 1 };
const vmidOf = (id: string) => Number(id.split("-")[1]);

describe("a Proxmox CT stopped outside sandboxd", () => {
  let emu: Emulator;
  let admin: AdminClient;
  /** Destroys leftovers at the end. */
  let cleaner: ProxmoxProvider;
  const managers: SandboxManager[] = [];
  const made: string[] = [];
  const leftovers = () => emu.containers().filter((c) => c.vmid !== emu.connection.templateId).map((c) => c.vmid);
  const node = () => emu.connection.nodes[0]!;

  /** `pct stop` through the API, waiting for its task. */
  async function stopOutside(id: string): Promise<void> {
    const upid = await admin.data("POST", `/nodes/${node()}/lxc/${vmidOf(id)}/status/stop`);
    expect((await admin.waitTask(node(), upid)).exitstatus).toBe("OK");
    expect(emu.containers().find((c) => c.vmid === vmidOf(id))?.status).toBe("stopped");
  }

  /** A replica: its own provider, session registry and manager, started (adopting what is in the pool). */
  async function replica(registry = new SessionRegistry()): Promise<SandboxManager> {
    const m = new SandboxManager({
      provider: new ProxmoxProvider(proxmoxConfigOf(emu.connection)), registry,
      lease: LEASE, defaults: DEFAULTS, logger: silentLogger,
    });
    managers.push(m);
    await m.start();
    return m;
  }

  const create = async (m: SandboxManager) => {
    const v = await m.create({ resources: { cores: 1, memoryMiB: 256, diskGiB: 1 }, internet: false, labels: { owner: "stopped-spec" }, requestId: "" });
    made.push(v.id);
    return v;
  };

  beforeAll(async () => {
    emu = await startEmulator({ port: 0, timing: FAST, instance: "pve-emu-t-gap-stop", subnet: "198.18.189.64/26" });
    admin = new AdminClient(emu.connection);
    cleaner = new ProxmoxProvider(proxmoxConfigOf(emu.connection));
    await cleaner.start();
  });

  afterAll(async () => {
    try {
      for (const m of managers) await m.close().catch(() => {});
      for (const id of made) await cleaner?.destroy(id).catch(() => {});
      if (emu) expect(leftovers()).toEqual([]);
      if (emu) expect(emu.rejectedRequests()).toEqual([]);
    } finally {
      await cleaner?.close();
      await emu?.close();
    }
  });

  it("provider.get and list report it stopped with no address; destroy still works", async () => {
    const provider = new ProxmoxProvider(proxmoxConfigOf(emu.connection));
    await provider.start();
    try {
      const h = await provider.create(SPEC);
      made.push(h.id);
      expect(h.state).toBe("running");
      expect((await provider.get(h.id))).toMatchObject({ state: "running", address: h.address });

      await stopOutside(h.id);
      expect(await provider.get(h.id)).toMatchObject({ id: h.id, state: "stopped", address: "" });
      const listed = (await provider.list()).find((x) => x.id === h.id);
      expect(listed).toMatchObject({ state: "stopped", address: "", spec: { labels: { owner: "stopped-spec" } } });
      expect(await provider.listIds()).toContain(h.id);

      await provider.destroy(h.id);
      expect(await provider.get(h.id)).toBeUndefined();
      expect(emu.containers().some((c) => c.vmid === vmidOf(h.id))).toBe(false);
    } finally {
      await provider.close();
    }
  });

  it("on a replica that finds it stopped (restarted sandboxd): use() is failed_precondition, GetSandbox says stopped, destroy works", async () => {
    const first = await replica();
    const v = await create(first);
    await stopOutside(v.id);

    const later = await replica(); // adopts it at start
    expect((await later.get(v.id)).state).toBe("stopped");
    const err = await later.use(v.id).then(() => undefined, (e: unknown) => e);
    expect(isSandboxError(err, "failed_precondition"), String(err)).toBe(true);
    expect(String((err as Error).message)).toMatch(/stopped/);
    expect(later.list({ selector: {}, pageSize: 100, pageToken: "" }).sandboxes.find((s) => s.id === v.id)?.state).toBe("stopped");

    await later.destroy(v.id);
    expect(emu.containers().some((c) => c.vmid === vmidOf(v.id))).toBe(false);
    await expect(later.get(v.id)).rejects.toSatisfy((e) => isSandboxError(e, "not_found"));
  });

  it("on a replica that did not know it (a request naming it): use() is failed_precondition, GetSandbox says stopped", async () => {
    const maker = await replica();
    const other = await replica(); // started before the create: learns of it only by the request
    const v = await create(maker);
    await stopOutside(v.id);

    const err = await other.use(v.id).then(() => undefined, (e: unknown) => e);
    expect(isSandboxError(err, "failed_precondition"), String(err)).toBe(true);
    expect((await other.get(v.id)).state).toBe("stopped");
    await other.destroy(v.id);
    expect(emu.containers().some((c) => c.vmid === vmidOf(v.id))).toBe(false);
  });

  it("on the replica that made it: the next Exec fails failed_precondition (not unavailable), then GetSandbox says stopped", async () => {
    const registry = new SessionRegistry();
    const m = await replica(registry);
    const v = await create(m);
    try {
      expect(v.state).toBe("running");
      expect((await execCollect(registry, v.id, { argv: ["true"] })).exitCode).toBe(0);

      await stopOutside(v.id);
      // Its cached entry still has an address: the failed SSH connect makes sandboxd ask Proxmox.
      const release = await m.use(v.id);
      const err = await execCollect(registry, v.id, { argv: ["true"] }).then(() => undefined, (e: unknown) => e).finally(release);
      expect(isSandboxError(err, "failed_precondition"), String(err)).toBe(true);
      expect(String(err)).toContain("stopped");
      expect((await m.get(v.id)).state).toBe("stopped");
      const again = await m.use(v.id).then((r) => (r(), undefined), (e: unknown) => e);
      expect(isSandboxError(again, "failed_precondition"), String(again)).toBe(true);
    } finally {
      await m.destroy(v.id);
      expect(emu.containers().some((c) => c.vmid === vmidOf(v.id))).toBe(false);
    }
  });
});

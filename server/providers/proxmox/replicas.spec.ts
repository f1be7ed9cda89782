/**
 * CreateSandbox request ids across replicas, on the PVE emulator: two
 * SandboxManagers, each with its own ProxmoxProvider, share one Proxmox pool.
 * A retry through the other replica gets the first sandbox (no second CT),
 * other parameters under the same request id are refused, and a retry while
 * the first replica's create is still running (past its clone) waits for it.
 * The periodic sync is kept out of the way (1 h) so only the request-id
 * lookup (provider.findByRequest) can connect the two replicas.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { proxmoxConfigOf, startEmulator, type Emulator } from "../../../test/pve-emulator/index.js";
import { SandboxError, isSandboxError } from "../../errors.js";
import { SandboxManager } from "../../sandboxes/manager.js";
import type { CreateRequest } from "../../sandboxes/types.js";
import { SessionRegistry } from "../../ssh/session-registry.js";
import { silentLogger } from "../local/options.js";
import { parseDescription } from "./description.js";
import { ProxmoxProvider } from "./provider.js";

const FAST = { cloneMs: 150, startMs: 50, ipDelayMs: 50, stopMs: 10, destroyMs: 10, authFailDelayMs: 100 };
const LEASE = { defaultTtlMs: 10 * 60_000, maxTtlMs: 3600_000, reapIntervalMs: 60_000, syncIntervalMs: 3600_000 };
const DEFAULTS = { cores: 1, memoryMiB: 256, diskGiB: 1 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const request = (requestId: string, labels: Record<string, string> = { owner: "replicas-spec" }): CreateRequest => ({
  resources: { cores: 1, memoryMiB: 256, diskGiB: 1 }, internet: false, labels, requestId,
});

describe("CreateSandbox request ids across two replicas on one Proxmox", () => {
  let emu: Emulator;
  let a: SandboxManager;
  let b: SandboxManager;
  let cleaner: ProxmoxProvider;
  const made = new Set<string>();

  /** Our CTs (not the template), by vmid. */
  const cts = () => emu.containers().filter((c) => c.vmid !== emu.connection.templateId);
  const replica = async () => {
    const m = new SandboxManager({
      provider: new ProxmoxProvider(proxmoxConfigOf(emu.connection)), registry: new SessionRegistry(),
      lease: LEASE, defaults: DEFAULTS, logger: silentLogger,
    });
    await m.start();
    return m;
  };
  const destroyAll = async () => {
    for (const id of made) await cleaner.destroy(id);
    made.clear();
    expect(cts().map((c) => c.vmid)).toEqual([]);
  };

  beforeAll(async () => {
    emu = await startEmulator({ port: 0, timing: FAST, instance: "pve-emu-t-gap-repl", subnet: "198.18.189.128/26" });
    cleaner = new ProxmoxProvider(proxmoxConfigOf(emu.connection));
    await cleaner.start();
    // Both start on an empty pool: neither learns of the other's sandboxes at start.
    a = await replica();
    b = await replica();
  });

  afterAll(async () => {
    try {
      await a?.close();
      await b?.close();
      if (cleaner) await destroyAll();
      if (emu) expect(emu.rejectedRequests()).toEqual([]);
    } finally {
      await cleaner?.close();
      await emu?.close();
    }
  });

  it("a retry through the other replica with the same parameters gets the first sandbox, no second CT", async () => {
    try {
      const first = await a.create(request("req-same"));
      made.add(first.id);
      expect(cts()).toHaveLength(1);

      const retried = await b.create(request("req-same"));
      made.add(retried.id);
      expect(retried.id).toBe(first.id);
      expect(retried).toMatchObject({ state: "running", labels: { owner: "replicas-spec" } });
      expect(cts()).toHaveLength(1);
      // B now knows it (GetSandbox, and a further retry without another lookup).
      expect((await b.get(first.id)).id).toBe(first.id);
      expect((await b.create(request("req-same"))).id).toBe(first.id);
      expect((await a.create(request("req-same"))).id).toBe(first.id);
      expect(cts()).toHaveLength(1);
    } finally {
      await destroyAll();
    }
  });

  it("the same request id with other parameters on the other replica is invalid_argument (request_id), no CT made", async () => {
    try {
      const first = await a.create(request("req-other", { owner: "replicas-spec", v: "1" }));
      made.add(first.id);
      expect(cts()).toHaveLength(1);

      const err = await b.create(request("req-other", { owner: "replicas-spec", v: "2" })).then((v) => (made.add(v.id), undefined), (e: unknown) => e);
      expect(isSandboxError(err, "invalid_argument"), String(err)).toBe(true);
      expect((err as SandboxError).field).toBe("request_id");
      // Another lease TTL is another parameter too.
      const ttl = await b.create({ ...request("req-other", { owner: "replicas-spec", v: "1" }), leaseTtlMs: 60_000 }).then((v) => (made.add(v.id), undefined), (e: unknown) => e);
      expect(isSandboxError(ttl, "invalid_argument"), String(ttl)).toBe(true);
      expect((ttl as SandboxError).field).toBe("request_id");
      expect(cts()).toHaveLength(1);
    } finally {
      await destroyAll();
    }
  });

  it("a retry through the other replica while the first create is still running (past its clone) waits and gets that sandbox", async () => {
    emu.setTiming({ startMs: 3000 });
    try {
      let aDone = false;
      const aCreate = a.create(request("req-wait")).finally(() => (aDone = true));
      // Wait for A's clone to end: the CT is in the pool, unlocked, with A's description (request id), not yet tagged.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const ct = cts()[0];
        const cloned = ct && emu.emu.cluster.poolMembers.has(ct.vmid) && ct.conf.lock === undefined
          && parseDescription(String(ct.conf.description ?? ""))?.request?.id === "req-wait";
        if (cloned) break;
        if (Date.now() > deadline) throw new Error("A's clone did not finish");
        await sleep(20);
      }
      expect(aDone).toBe(false);
      expect(String(cts()[0]!.conf.tags ?? "")).not.toContain("sandboxd");

      const t0 = Date.now();
      const bCreate = b.create(request("req-wait"));
      const [fromA, fromB] = await Promise.all([aCreate, bCreate]);
      made.add(fromA.id).add(fromB.id);
      expect(fromB.id).toBe(fromA.id);
      expect(fromB.state).toBe("running");
      // B waited for A's (slow) start rather than answering at once.
      expect(Date.now() - t0).toBeGreaterThan(1000);
      expect(cts()).toHaveLength(1);
    } finally {
      emu.setTiming(FAST);
      await destroyAll();
    }
  });
});

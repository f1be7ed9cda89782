/**
 * ProxmoxProvider against the PVE emulator (real local sandboxes with sshd):
 * create/exec/destroy, concurrent clones of one template, faults mid-create,
 * failing tasks, a wrong token, out-of-pool containers (several nodes: nodes.spec.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { proxmoxConfigOf, startEmulator, type Emulator } from "../../../test/pve-emulator/index.js";
import { SessionRegistry } from "../../ssh/session-registry.js";
import { execCollect } from "../../ssh/exec-collect.js";
import { isSandboxError } from "../../errors.js";
import type { SandboxSpec } from "../provider.js";
import type { ProxmoxConfig } from "./config.js";
import { ProxmoxProvider } from "./provider.js";
import { loadConfig } from "../../config/config.js";
import { makeProvider } from "../../server.js";

const FAST = { cloneMs: 150, startMs: 50, ipDelayMs: 100, stopMs: 10, destroyMs: 10, authFailDelayMs: 100 };
const SPEC: SandboxSpec = { cores: 1, memoryMiB: 256, diskGiB: 2, internet: false, labels: { owner: "spec" } };

const configOf = (emu: Emulator, over: Partial<ProxmoxConfig> = {}) => proxmoxConfigOf(emu.connection, over);

/** CTs other than the template (and other than `keep`). */
const leftovers = (emu: Emulator, keep: number[] = []) =>
  emu.containers().filter((ct) => ct.vmid !== emu.connection.templateId && !keep.includes(ct.vmid)).map((ct) => ct.vmid);

describe("ProxmoxProvider on the emulator", () => {
  let emu: Emulator;
  let provider: ProxmoxProvider;
  beforeAll(async () => {
    emu = await startEmulator({ port: 0, nodes: 1, timing: FAST, instance: "pve-emu-t-prov", subnet: "198.18.182.0/24" });
    provider = new ProxmoxProvider(configOf(emu));
    await provider.start();
  });
  afterAll(async () => {
    await provider?.close();
    const refused = emu?.rejectedRequests() ?? [];
    await emu?.close();
    expect(refused).toEqual([]); // nothing Proxmox's published schema refuses
  });

  it("is selected by SANDBOXD_PROVIDER=proxmox and configured from the environment", async () => {
    const c = emu.connection;
    const config = loadConfig({
      SANDBOXD_PROVIDER: "proxmox", SANDBOXD_ADMIN_LISTEN: "127.0.0.1:0", SANDBOXD_PROXMOX_URL: c.url, SANDBOXD_PROXMOX_TOKEN_ID: c.tokenId, SANDBOX_PROXMOX_SECRET: c.secret,
      SANDBOXD_PROXMOX_NODES: c.nodes.join(","), SANDBOXD_PROXMOX_TEMPLATE_ID: String(c.templateId), SANDBOXD_PROXMOX_POOL: c.pool,
      SANDBOXD_PROXMOX_BRIDGE: c.bridge, SANDBOXD_PROXMOX_CA_FILE: c.caFile, SANDBOXD_SSH_KEY_PATH: c.sshKeyPath,
    });
    const p = makeProvider(config, { debug() {}, info() {}, warn() {}, error() {} } as never);
    expect(p.name).toBe("proxmox");
    try {
      await p.start();
      expect(await p.list()).toEqual([]);
    } finally {
      await p.close();
    }
  });

  it("fails at start with a wrong token, naming the settings", async () => {
    const bad = new ProxmoxProvider(configOf(emu, { secret: "00000000-0000-0000-0000-000000000000" }));
    const err = await bad.start().then(() => undefined, (e: Error) => e);
    await bad.close();
    expect(err?.message).toMatch(/SANDBOXD_PROXMOX_TOKEN_ID/);
    expect(err?.message).toMatch(/SANDBOXD_PROXMOX_SECRET/);
    expect(err?.message).not.toContain("00000000-0000-0000-0000-000000000000");
  });

  it("creates a sandbox reachable over SSH, lists, toggles internet and destroys it", async () => {
    const h = await provider.create(SPEC);
    // Its own host key, learnt at create, and the address pinned then (stored in the description).
    expect(h.ssh).toMatchObject({ host: h.address, port: 22, username: "sandbox" });
    expect(h.ssh.hostKey).toMatch(/^ssh-ed25519 AAAA/);
    expect((await provider.get(h.id))?.ssh.hostKey).toBe(h.ssh.hostKey);
    const registry = new SessionRegistry();
    registry.register(h.id, h.ssh);
    try {
      const r = await execCollect(registry, h.id, { argv: ["sh", "-c", "echo hello; hostname"] });
      expect(r.exitCode).toBe(0);
      expect(r.stdout.toString()).toContain("hello");
    } finally {
      await registry.close(h.id);
    }
    const vmid = Number(h.id.split("-")[1]);
    const ct = emu.containers().find((c) => c.vmid === vmid)!;
    expect(String(ct.conf.tags)).toContain("sandboxd");
    expect(ct.conf).toMatchObject({ cores: 1, memory: 256, swap: 0 });
    const listed = await provider.list();
    expect(listed.map((x) => x.id)).toContain(h.id);
    expect(listed.find((x) => x.id === h.id)!.spec.labels).toEqual({ owner: "spec" });
    expect((await provider.get(h.id))?.address).toBe(h.address);
    await provider.setInternet(h.id, true);
    expect(ct.firewall.policy_out).toBe("ACCEPT");
    await provider.setInternet(h.id, false);
    expect(ct.firewall.policy_out).toBe("REJECT");
    await provider.destroy(h.id);
    await provider.destroy(h.id);
    expect(leftovers(emu)).toEqual([]);
    expect(await provider.get(h.id)).toBeUndefined();
    await expect(provider.setInternet(h.id, true)).rejects.toSatisfy((e) => isSandboxError(e, "not_found"));
  });

  it("10 concurrent creates from one template all succeed (template lock retried)", async () => {
    const hs = await Promise.all(Array.from({ length: 10 }, () => provider.create(SPEC)));
    expect(new Set(hs.map((h) => h.id)).size).toBe(10);
    expect(new Set(hs.map((h) => h.address)).size).toBe(10);
    // Each clone's sshd made its own host key, learnt at create: no sandbox can pass for another.
    expect(new Set(hs.map((h) => h.ssh.hostKey)).size).toBe(10);
    await Promise.all(hs.map((h) => provider.destroy(h.id)));
    expect(leftovers(emu)).toEqual([]);
  });

  it("pins the address at create: a container that reports another one later (its root changed eth0) is not followed", async () => {
    const h = await provider.create(SPEC);
    try {
      const ct = emu.containers().find((c) => c.vmid === Number(h.id.split("-")[1]))!;
      ct.address = "198.18.182.250"; // what /interfaces reports from now on
      const again = await new ProxmoxProvider(configOf(emu)).get(h.id);
      expect(again?.address).toBe(h.address);
      expect(again?.ssh.hostKey).toBe(h.ssh.hostKey);
    } finally {
      await provider.destroy(h.id);
    }
  });

  it("a failing clone task gives a clear error and leaves nothing", async () => {
    emu.setFaults({ taskFailRate: 1 }, true);
    try {
      const err = await provider.create(SPEC).then(() => undefined, (e: Error) => e);
      expect(err?.message).toMatch(/clone failed/);
    } finally {
      emu.setFaults({}, true);
    }
    expect(leftovers(emu)).toEqual([]);
  });

  it("5xx and dropped connections mid-create leave no container behind", async () => {
    emu.setFaults({ errorRate: 0.15, errorStatus: 596, dropRate: 0.1 }, true);
    let results: PromiseSettledResult<Awaited<ReturnType<typeof provider.create>>>[];
    try {
      results = await Promise.allSettled(Array.from({ length: 4 }, () => provider.create(SPEC)));
    } finally {
      emu.setFaults({}, true);
    }
    const ok = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const okVmids = ok.map((h) => Number(h.id.split("-")[1]));
    expect(leftovers(emu, okVmids)).toEqual([]);
    await Promise.all(ok.map((h) => provider.destroy(h.id)));
    expect(leftovers(emu)).toEqual([]);
  });

  it("never touches containers outside the pool", async () => {
    const h = await provider.create(SPEC);
    const vmid = Number(h.id.split("-")[1]);
    emu.emu.cluster.poolMembers.delete(vmid); // moved out of the pool by someone else
    try {
      expect((await provider.list()).map((x) => x.id)).not.toContain(h.id);
      await provider.destroy(h.id);
      expect(emu.containers().some((c) => c.vmid === vmid)).toBe(true);
    } finally {
      emu.emu.cluster.poolMembers.add(vmid);
      await provider.destroy(h.id);
    }
    expect(leftovers(emu)).toEqual([]);
  });
});

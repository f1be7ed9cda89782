/**
 * Several nodes: Proxmox clones a container to another node (`target`) only
 * when its volumes are on shared storage. With local storage sandboxd clones
 * each node's own template; with shared storage one template serves all nodes.
 */
import { afterEach, describe, expect, it } from "vitest";
import { proxmoxConfigOf, startEmulator, type Emulator, type EmulatorOptions } from "../../../test/pve-emulator/index.js";
import type { Logger } from "../local/options.js";
import type { SandboxSpec } from "../provider.js";
import { ProxmoxProvider } from "./provider.js";

const FAST = { cloneMs: 150, startMs: 50, ipDelayMs: 50, stopMs: 10, destroyMs: 10, authFailDelayMs: 100 };
const SPEC: SandboxSpec = { cores: 1, memoryMiB: 256, diskGiB: 1, internet: false, labels: {} };

describe("ProxmoxProvider on several nodes", () => {
  let emu: Emulator | undefined;
  let provider: ProxmoxProvider | undefined;
  const warnings: string[] = [];
  const logger = { debug: () => {}, info: () => {}, warn: (_o: object, m?: string) => warnings.push(m ?? ""), error: () => {} } as unknown as Logger;

  const start = async (options: EmulatorOptions) => {
    warnings.length = 0;
    emu = await startEmulator({ port: 0, nodes: 2, timing: FAST, instance: "pve-emu-t-place", subnet: "198.18.183.0/24", ...options });
    provider = new ProxmoxProvider(proxmoxConfigOf(emu.connection), { logger });
    await provider.start();
    return { emu, provider };
  };
  afterEach(async () => {
    await provider?.close();
    const refused = emu?.rejectedRequests() ?? [];
    await emu?.close();
    expect(refused).toEqual([]); // nothing Proxmox's published schema refuses
    emu = provider = undefined;
  });
  const nodeOf = (e: Emulator, id: string) => e.containers().find((c) => c.vmid === Number(id.split("-")[1]))?.node;
  const sandboxes = (e: Emulator) => e.containers().filter((c) => !c.conf.template);

  it("local storage, a template per node: creates land on both nodes, each cloned from its own node's template", async () => {
    const { emu, provider } = await start({ template: { perNode: true } });
    expect(emu.connection.templates).toEqual({ pve1: 9000, pve2: 9001 });
    const hs = await Promise.all([provider.create(SPEC), provider.create(SPEC)]);
    expect(new Set(hs.map((h) => nodeOf(emu, h.id)))).toEqual(new Set(["pve1", "pve2"]));
    // The emulator refuses `target` for local storage, so these creates prove none was sent.
    expect(warnings.filter((w) => w.includes("no template on these nodes"))).toEqual([]);
    await Promise.all(hs.map((h) => provider.destroy(h.id)));
    expect(sandboxes(emu)).toEqual([]);
  });

  it("local storage, one template: only its node is used, and start says why", async () => {
    const { emu, provider } = await start({});
    expect(warnings.some((w) => w.includes("no template on these nodes"))).toBe(true);
    const hs = await Promise.all([provider.create(SPEC), provider.create(SPEC)]);
    expect(hs.map((h) => nodeOf(emu, h.id))).toEqual(["pve1", "pve1"]);
    await Promise.all(hs.map((h) => provider.destroy(h.id)));
    expect(sandboxes(emu)).toEqual([]);
  });

  it("shared storage, one template: clones go to both nodes with target", async () => {
    const { emu, provider } = await start({ template: { storage: { id: "ceph", shared: true } } });
    const hs = await Promise.all([provider.create(SPEC), provider.create(SPEC)]);
    expect(new Set(hs.map((h) => nodeOf(emu, h.id)))).toEqual(new Set(["pve1", "pve2"]));
    for (const h of hs) expect(String(emu.containers().find((c) => c.vmid === Number(h.id.split("-")[1]))!.conf.rootfs)).toMatch(/^ceph:vm-/);
    expect(await provider.list()).toHaveLength(2);
    await Promise.all(hs.map((h) => provider.destroy(h.id)));
    expect(sandboxes(emu)).toEqual([]);
  });
});

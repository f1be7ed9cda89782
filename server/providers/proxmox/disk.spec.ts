/**
 * Root disk sizes on the PVE emulator (running CTs are real local sandboxes
 * whose disk image has the rootfs size): the template's root disk (2 GiB here)
 * is the minimum; a larger spec is grown with PUT …/resize before the start
 * and is what the sandbox really has; a smaller one is refused before any
 * clone; the handle reports the size in the CT's config.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countsBetween, proxmoxConfigOf, startEmulator, type Emulator } from "../../../test/pve-emulator/index.js";
import { PveClient as AdminClient } from "../../../test/pve-emulator/testing.js";
import { SandboxError, isSandboxError } from "../../errors.js";
import { execCollect } from "../../ssh/exec-collect.js";
import { SessionRegistry } from "../../ssh/session-registry.js";
import type { SandboxHandle, SandboxSpec } from "../provider.js";
import { ProxmoxProvider } from "./provider.js";

const FAST = { cloneMs: 150, startMs: 50, ipDelayMs: 50, stopMs: 10, destroyMs: 10, authFailDelayMs: 100 };
const GIB = 2 ** 30;
const spec = (diskGiB: number): SandboxSpec => ({ cores: 1, memoryMiB: 256, diskGiB, internet: false, labels: { owner: "disk-spec" } });
const vmidOf = (id: string) => Number(id.split("-")[1]);
const RESIZE = "PUT /nodes/{node}/lxc/{vmid}/resize";
const CLONE = "POST /nodes/{node}/lxc/{vmid}/clone";

describe("Proxmox root disk size on the emulator (template 2 GiB)", () => {
  let emu: Emulator;
  let admin: AdminClient;
  let provider: ProxmoxProvider;
  const made: string[] = [];
  const leftovers = () => emu.containers().filter((c) => c.vmid !== emu.connection.templateId).map((c) => c.vmid);
  const node = () => emu.connection.nodes[0]!;

  /** Size in bytes of the filesystem holding /home inside the sandbox (in the emulator's sandboxes / is the host's, read-only; the CT's disk holds /home and /tmp; on a real CT /home is on the rootfs). */
  async function filesystemBytes(h: SandboxHandle): Promise<number> {
    const registry = new SessionRegistry();
    registry.register(h.id, h.ssh);
    try {
      const r = await execCollect(registry, h.id, { argv: ["sh", "-c", "df -B1 -P /home/sandbox | tail -n 1"] });
      expect(r.exitCode, r.stderr.toString()).toBe(0);
      const fields = r.stdout.toString().trim().split(/\s+/);
      return Number(fields[1]);
    } finally {
      await registry.close(h.id);
    }
  }

  beforeAll(async () => {
    emu = await startEmulator({ port: 0, timing: FAST, instance: "pve-emu-t-gap-disk", subnet: "198.18.189.0/26", template: { diskGiB: 2 } });
    admin = new AdminClient(emu.connection);
    provider = new ProxmoxProvider(proxmoxConfigOf(emu.connection));
    await provider.start();
  });

  afterAll(async () => {
    try {
      for (const id of made) await provider?.destroy(id).catch(() => {});
      if (emu) expect(leftovers()).toEqual([]);
      if (emu) expect(emu.rejectedRequests()).toEqual([]);
    } finally {
      await provider?.close();
      await emu?.close();
    }
  });

  it("the template's root disk is the provider's minimum", () => {
    expect(provider.minDiskGiB).toBe(2);
  });

  it("diskGiB 4 grows the clone's rootfs before the start: the sandbox's filesystem is 4 GiB and the handle says so (2, the template's, is not resized)", async () => {
    const before = emu.requestCount();
    const [h, same] = await Promise.all([provider.create(spec(4)), provider.create(spec(2))]);
    made.push(h.id, same.id);
    // One resize: for the 4 GiB sandbox only.
    expect(countsBetween(before, emu.requestCount()).byRoute[RESIZE]).toBe(1);
    expect(h.spec.diskGiB).toBe(4);
    expect(same.spec.diskGiB).toBe(2);

    const vmid = vmidOf(h.id);
    const conf = await admin.data("GET", `/nodes/${node()}/lxc/${vmid}/config`);
    expect(conf.rootfs).toMatch(/(^|,)size=4G(,|$)/);
    expect((await admin.data("GET", `/nodes/${node()}/lxc/${vmidOf(same.id)}/config`)).rootfs).toMatch(/(^|,)size=2G(,|$)/);
    // The local sandbox behind the running CT was made with the grown size (so the resize came before the start).
    const behind = (await emu.sandboxes.list()).find((s) => s.spec.labels["pve-vmid"] === String(vmid));
    expect(behind?.spec.diskGiB).toBe(4);

    // What the sandbox really has: ext4 on a 4 GiB image, less its metadata; clearly not the template's 2 GiB.
    const bytes = await filesystemBytes(h);
    const twoGiB = await filesystemBytes(same);
    expect(bytes).toBeGreaterThan(3.5 * GIB);
    expect(bytes).toBeLessThanOrEqual(4 * GIB);
    expect(twoGiB).toBeGreaterThan(1.5 * GIB);
    expect(twoGiB).toBeLessThanOrEqual(2 * GIB);

    expect((await provider.get(h.id))?.spec.diskGiB).toBe(4);
    expect((await provider.list()).find((x) => x.id === h.id)?.spec.diskGiB).toBe(4);
  });

  it("get/list report the size in the CT's config, not the one asked for (grown outside sandboxd)", async () => {
    const h = await provider.create(spec(3));
    made.push(h.id);
    expect(h.spec.diskGiB).toBe(3);
    const vmid = vmidOf(h.id);
    const upid = await admin.data("PUT", `/nodes/${node()}/lxc/${vmid}/resize`, { form: { disk: "rootfs", size: "+2G" } });
    expect((await admin.waitTask(node(), upid)).exitstatus).toBe("OK");
    expect((await provider.get(h.id))?.spec.diskGiB).toBe(5);
    expect((await provider.list()).find((x) => x.id === h.id)?.spec.diskGiB).toBe(5);
  });

  it("diskGiB 1 (below the template's 2) is invalid_argument on disk_gib, refused before anything is cloned", async () => {
    const cts = leftovers();
    const before = emu.requestCount();
    const err = await provider.create(spec(1)).then((h) => (made.push(h.id), undefined), (e: unknown) => e);
    const calls = countsBetween(before, emu.requestCount()).byRoute;
    expect(isSandboxError(err, "invalid_argument")).toBe(true);
    expect((err as SandboxError).field).toBe("disk_gib");
    expect((err as SandboxError).message).toMatch(/\b2\b/);
    expect(calls[CLONE]).toBeUndefined();
    expect(calls["GET /cluster/nextid"]).toBeUndefined();
    expect(leftovers()).toEqual(cts);
  });
});

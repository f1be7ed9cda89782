/**
 * ProxmoxProvider on the emulator, the unhappy paths: a clone whose answer is
 * lost (before or after it happened), cancellation mid-create, TLS pinning, and
 * the secret never showing up in logs or errors.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { proxmoxConfigOf, startEmulator, type Emulator } from "../../../test/pve-emulator/index.js";
import { ApiError } from "../../../test/pve-emulator/http.js";
import { lxcRoutes } from "../../../test/pve-emulator/routes/lxc.js";
import { isSandboxError } from "../../errors.js";
import type { SandboxSpec } from "../provider.js";
import type { ProxmoxConfig } from "./config.js";
import { ProxmoxProvider } from "./provider.js";

const FAST = { cloneMs: 300, startMs: 50, ipDelayMs: 100, stopMs: 10, destroyMs: 10, authFailDelayMs: 100 };
const SPEC: SandboxSpec = { cores: 1, memoryMiB: 256, diskGiB: 2, internet: false, labels: {} };
const clone = lxcRoutes.find((r) => r.method === "POST" && r.path.endsWith("/clone"))!;
const realClone = clone.handler;

describe("ProxmoxProvider unknown outcomes", () => {
  let emu: Emulator;
  let provider: ProxmoxProvider;
  const lines: string[] = [];
  const logger = Object.fromEntries(["debug", "info", "warn", "error"].map((l) => [l, (o: object, m?: string) => lines.push(`${JSON.stringify(o)} ${m ?? ""}`)])) as never;
  const cfg = (over: Partial<ProxmoxConfig> = {}): ProxmoxConfig => proxmoxConfigOf(emu.connection, { createTimeoutMs: 60_000, ...over });

  const leftovers = () => emu.containers().filter((ct) => ct.vmid !== emu.connection.templateId).map((ct) => ct.vmid);

  beforeAll(async () => {
    emu = await startEmulator({ port: 0, timing: FAST, instance: "pve-emu-t-out", subnet: "198.18.184.0/24" });
    provider = new ProxmoxProvider(cfg(), { logger });
    await provider.start();
  });
  afterEach(() => {
    clone.handler = realClone;
    emu.setFaults({}, true);
  });
  afterAll(async () => {
    clone.handler = realClone;
    await provider?.close();
    const refused = emu?.rejectedRequests() ?? [];
    await emu?.close();
    expect(refused).toEqual([]); // nothing Proxmox's published schema refuses
    expect(lines.join("\n")).not.toContain(emu.connection.secret);
  });

  it("a clone that happened but whose answer was lost (596) is adopted, not repeated", async () => {
    let calls = 0;
    clone.handler = async (call) => {
      calls++;
      const out = await realClone(call);
      if (calls === 1) throw new ApiError(596, "Connection timed out");
      return out;
    };
    const h = await provider.create(SPEC);
    expect(calls).toBe(1);
    expect(leftovers()).toEqual([Number(h.id.split("-")[1])]);
    await provider.destroy(h.id);
    expect(leftovers()).toEqual([]);
  });

  it("a clone refused before it happened (596) is retried", async () => {
    let calls = 0;
    clone.handler = async (call) => {
      if (++calls === 1) throw new ApiError(596, "Connection timed out");
      return realClone(call);
    };
    const h = await provider.create(SPEC);
    expect(calls).toBe(2);
    expect(leftovers()).toEqual([Number(h.id.split("-")[1])]);
    await provider.destroy(h.id);
    expect(leftovers()).toEqual([]);
  });

  it("cancelling mid-create gives cancelled and destroys the half-made container", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 150); // during the clone task
    const err = await provider.create(SPEC, { signal: ac.signal }).then(() => undefined, (e: unknown) => e);
    expect(isSandboxError(err, "cancelled")).toBe(true);
    expect(leftovers()).toEqual([]);
  });

  it("gives up on persistent 5xx with unavailable, leaving nothing", async () => {
    emu.setFaults({ errorRate: 1, errorStatus: 503 });
    const err = await provider.create(SPEC).then(() => undefined, (e: unknown) => e);
    emu.setFaults({}, true);
    expect(isSandboxError(err, "unavailable")).toBe(true);
    expect(String((err as Error).message)).not.toContain(emu.connection.secret);
    expect(leftovers()).toEqual([]);
  });

  it("verifies TLS: pinned fingerprint works, an unknown CA or wrong pin fails, insecure only when asked", async () => {
    const pinned = new ProxmoxProvider(cfg({ caFile: undefined, fingerprint: emu.connection.fingerprint }));
    await pinned.start();
    await pinned.close();
    for (const over of [{ caFile: undefined }, { caFile: undefined, fingerprint: "00".repeat(32) }]) {
      const p = new ProxmoxProvider(cfg({ ...over, connectTimeoutMs: 2000 }), { client: undefined });
      const err = await p.start().then(() => undefined, (e: Error) => e);
      await p.close();
      expect(err).toBeDefined();
      expect(err!.message).not.toContain(emu.connection.secret);
    }
    const insecure = new ProxmoxProvider(cfg({ caFile: undefined, insecure: true }));
    await insecure.start();
    await insecure.close();
  });
});

/**
 * Two sandboxd replicas against one Proxmox (the emulator) serve the same
 * sandboxes: either runs commands in any of them, a renewal through one keeps
 * the sandbox alive against the other's reaper, reaping by both at once is
 * idempotent, and when one is killed the other carries on and reaps.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { collectExec, exists } from "../e2e/harness.js";
import { startEmulator, type Emulator } from "../pve-emulator/index.js";
import { EMULATOR_TIMING, REPLICAS_PVE, eventually, proxmoxEnv, sandboxd, sleep, type SandboxClient, type Sandboxd } from "./harness.js";

const echo = async (client: SandboxClient, id: string) =>
  (await collectExec(client.exec({ sandboxId: id, command: { case: "shell", value: "echo $((6*7))" } }))).stdout;

describe("two replicas on one Proxmox", () => {
  let emulator: Emulator;
  const servers: Sandboxd[] = [];
  const start = async () => {
    const s = await sandboxd(proxmoxEnv(emulator.connection));
    servers.push(s);
    return s;
  };
  const ctOf = (id: string) => emulator.containers().find((c) => c.conf.hostname === id);
  const reapFailures = () => servers.map((s) => s.logs()).join("\n").split("\n").filter((l) => l.includes("reaping an expired sandbox failed"));

  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, timing: { ...EMULATOR_TIMING, cloneMs: 200 }, ...REPLICAS_PVE });
  });
  afterAll(async () => {
    await Promise.allSettled(servers.map((s) => s.kill()));
    const refused = emulator?.rejectedRequests() ?? [];
    await emulator?.close();
    expect(refused).toEqual([]); // every call sandboxd made passes Proxmox's published schema
  });

  it("serve the same sandboxes, keep renewed ones, reap idempotently, and one carries on when the other is killed", async () => {
    const r1 = await start();
    const r2 = await start();

    // Made by r1, used at once through r2.
    const x = (await r1.client.createSandbox({ leaseTtl: { seconds: 3n } })).sandbox!;
    expect(await echo(r2.client, x.id)).toBe("42\n");
    // Renewed only through r2 for over three TTLs: r1's reaper re-reads the stored lease and leaves it.
    let lastExpiry = 0;
    for (let i = 0; i < 10; i++) {
      await sleep(1000);
      lastExpiry = timestampDate((await r2.client.keepAlive({ sandboxId: x.id })).leaseExpiresAt!).getTime();
    }
    expect(await exists(r1.client, x.id)).toBe(true);
    expect(await echo(r1.client, x.id)).toBe("42\n");

    // Made by r2, listed by r1 after its periodic sync.
    const y = (await r2.client.createSandbox({ leaseTtl: { seconds: 600n } })).sandbox!;
    await eventually("r1 lists r2's sandbox", 10_000, async () => (await r1.client.listSandboxes({})).sandboxes.some((s) => s.id === y.id));

    // A long command through r1 keeps its sandbox alive against r2's reaper (r1 stores renewals while it runs).
    const v = (await r1.client.createSandbox({ leaseTtl: { seconds: 2n } })).sandbox!;
    expect(await echo(r2.client, v.id)).toBe("42\n");
    const long = await collectExec(r1.client.exec({ sandboxId: v.id, command: { case: "shell", value: "sleep 6; echo done" } }));
    expect(long.stdout).toBe("done\n");
    expect(await exists(r2.client, v.id)).toBe(true);
    await r2.client.destroySandbox({ sandboxId: v.id });

    // Both replicas know w and reap it at once: both succeed, whoever gets there first.
    const w = (await r1.client.createSandbox({ leaseTtl: { seconds: 2n } })).sandbox!;
    expect(await echo(r2.client, w.id)).toBe("42\n");
    await eventually("w reaped", 15_000, () => ctOf(w.id) === undefined);
    await eventually("both replicas forgot w", 10_000, async () => !(await exists(r1.client, w.id)) && !(await exists(r2.client, w.id)));

    // r1 dies with a sandbox of its own that nobody renews: r2 reaps it on time; x too once r2 stops renewing.
    const z = (await r1.client.createSandbox({ leaseTtl: { seconds: 3n } })).sandbox!;
    await eventually("r2 knows z", 10_000, async () => (await r2.client.listSandboxes({})).sandboxes.some((s) => s.id === z.id));
    await r1.kill();
    const zExpiry = timestampDate(z.leaseExpiresAt!).getTime();
    await eventually("r2 reaps r1's expired sandbox", zExpiry - Date.now() + 5_000, () => ctOf(z.id) === undefined);
    await eventually("r2 reaps x once it is no longer renewed", lastExpiry - Date.now() + 5_000, () => ctOf(x.id) === undefined);
    expect(await exists(r2.client, x.id)).toBe(false);

    // What is left is exactly y, still usable through r2.
    expect(emulator.containers().filter((c) => !c.conf.template).map((c) => c.conf.hostname)).toEqual([y.id]);
    expect(await echo(r2.client, y.id)).toBe("42\n");
    await r2.client.destroySandbox({ sandboxId: y.id });
    expect(emulator.containers().filter((c) => !c.conf.template)).toEqual([]);
    expect(await emulator.sandboxes.list()).toEqual([]);
    expect(reapFailures()).toEqual([]);
    await r2.stop();
  });
});

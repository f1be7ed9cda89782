/**
 * Leases end to end, on both providers: an idle sandbox is destroyed on time
 * when its lease runs out (the time lease_expires_at said), KeepAlive keeps
 * it for many TTLs, an RPC in flight keeps it while it runs, and a renewal is
 * stored with the sandbox (a restarted sandboxd would see it).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { PROVIDERS, collectExec, exists as existsIn, startE2E, type E2E } from "./harness.js";

const TTL = { seconds: 2n };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The reaper runs every 200 ms here; a destroy takes well under a second. */
const ON_TIME_MS = 3_000;

describe.each(PROVIDERS)("leases (%s)", (provider) => {
  let e: E2E;

  const exists = (id: string) => existsIn(e.grpc, id);

  /** Gone no later than ON_TIME_MS after `expiresAt`, and not before it. */
  async function expectReapedOnTime(id: string, expiresAt: number): Promise<void> {
    while (Date.now() < expiresAt - 300) {
      expect(await exists(id)).toBe(true);
      await sleep(200);
    }
    while (await exists(id)) {
      if (Date.now() > expiresAt + ON_TIME_MS) throw new Error(`sandbox ${id} still exists ${Date.now() - expiresAt} ms after its lease ran out`);
      await sleep(50);
    }
    expect((await e.grpc.listSandboxes({})).sandboxes.map((x) => x.id)).not.toContain(id);
  }

  beforeAll(async () => {
    e = await startE2E(3, {}, provider);
  });
  afterAll(async () => {
    await e?.stop();
  });

  it("destroys an idle sandbox on time when its lease runs out", async () => {
    const s = (await e.grpc.createSandbox({ leaseTtl: TTL })).sandbox!;
    const expiresAt = timestampDate(s.leaseExpiresAt!).getTime();
    // The TTL counts from when the sandbox was ready, not from the request.
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(2000);
    expect(expiresAt - Date.now()).toBeGreaterThan(1700);
    await expectReapedOnTime(s.id, expiresAt);
    if (e.emulator) expect(e.emulator.containers().filter((c) => c.conf.hostname === s.id)).toEqual([]);
  });

  it("KeepAlive keeps it for many TTLs, each expiry covering now + TTL; it goes on time once renewals stop", async () => {
    const s = (await e.grpc.createSandbox({ leaseTtl: TTL })).sandbox!;
    let expiresAt = 0;
    for (let i = 0; i < 8; i++) {
      await sleep(1000);
      const asked = Date.now() + 2000;
      expiresAt = timestampDate((await e.grpc.keepAlive({ sandboxId: s.id })).leaseExpiresAt!).getTime();
      expect(expiresAt).toBeGreaterThanOrEqual(asked);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 3000); // at most 1.5 × TTL
    }
    expect(await exists(s.id)).toBe(true);
    await expectReapedOnTime(s.id, expiresAt);
  });

  it("never destroys a sandbox with an RPC in flight; the lease restarts when it ends", async () => {
    const s = (await e.grpc.createSandbox({ leaseTtl: TTL })).sandbox!;
    const r = await collectExec(e.connect2.exec({ sandboxId: s.id, command: { case: "shell", value: "sleep 5; echo survived" } }));
    expect(r.stdout).toBe("survived\n");
    expect(r.exited!.exitCode).toBe(0);
    const lease = timestampDate((await e.grpc.getSandbox({ sandboxId: s.id })).sandbox!.leaseExpiresAt!).getTime();
    expect(lease).toBeGreaterThan(Date.now() + 1000);
    await expectReapedOnTime(s.id, lease);
  });

  it.runIf(provider === "proxmox")("reaps through Proxmox faults (500s, dropped connections), retrying until the container is gone", async () => {
    const s = (await e.grpc.createSandbox({ leaseTtl: TTL })).sandbox!;
    // Gone means the destroy task finished: the CT's record is gone and so is the sandbox behind it
    // (a DELETE blanks the CT's config at once, before its task destroys anything).
    const gone = async () => !e.emulator!.containers().some((c) => c.conf.hostname === s.id) && (await e.emulator!.sandboxes.list()).length === 0;
    e.emulator!.setFaults({ errorRate: 0.4, errorStatus: 500, dropRate: 0.2 });
    try {
      const end = Date.now() + 60_000;
      while (!(await gone())) {
        if (Date.now() > end) throw new Error("the expired sandbox's container is still there after 60 s of faults");
        await sleep(200);
      }
    } finally {
      e.emulator!.setFaults({}, true);
    }
    expect(await e.emulator!.sandboxes.list()).toEqual([]);
    while (await exists(s.id)) await sleep(100);
  });

  it("refuses a TTL above the maximum or not positive", async () => {
    const s = (await e.grpc.createSandbox({ leaseTtl: { seconds: 60n } })).sandbox!;
    await expect(e.grpc.keepAlive({ sandboxId: s.id, leaseTtl: { seconds: 10n ** 7n } })).rejects.toMatchObject({ code: Code.InvalidArgument });
    await expect(e.grpc.createSandbox({ leaseTtl: { seconds: -1n } })).rejects.toMatchObject({ code: Code.InvalidArgument });
    await expect(e.grpc.keepAlive({ sandboxId: "sbx-0000000000" })).rejects.toMatchObject({ code: Code.NotFound });
    await e.grpc.destroySandbox({ sandboxId: s.id });
  });
});

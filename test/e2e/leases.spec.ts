/**
 * Leases end to end: an idle sandbox is destroyed when its lease runs out,
 * KeepAlive and an RPC in flight keep it alive.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { collectExec, startE2E, type E2E } from "./harness.js";

let e: E2E;
const TTL = { seconds: 2n };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function exists(id: string): Promise<boolean> {
  try {
    await e.grpc.getSandbox({ sandboxId: id });
    return true;
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.NotFound) return false;
    throw err;
  }
}

async function waitGone(id: string, withinMs: number): Promise<void> {
  const end = Date.now() + withinMs;
  while (Date.now() < end) {
    if (!(await exists(id))) return;
    await sleep(200);
  }
  throw new Error(`sandbox ${id} still exists after ${withinMs} ms`);
}

describe("leases", () => {
  beforeAll(async () => {
    e = await startE2E(3);
  });
  afterAll(async () => {
    await e?.stop();
  });

  it("destroys an idle sandbox when its lease runs out", async () => {
    const s = (await e.grpc.createSandbox({ leaseTtl: TTL })).sandbox!;
    expect(timestampDate(s.leaseExpiresAt!).getTime() - Date.now()).toBeLessThanOrEqual(2000);
    await waitGone(s.id, 15_000);
    expect((await e.grpc.listSandboxes({})).sandboxes.map((x) => x.id)).not.toContain(s.id);
  });

  it("KeepAlive extends the lease", async () => {
    const s = (await e.grpc.createSandbox({ leaseTtl: TTL })).sandbox!;
    for (let i = 0; i < 5; i++) {
      await sleep(800);
      await e.grpc.keepAlive({ sandboxId: s.id });
    }
    expect(await exists(s.id)).toBe(true);
    await waitGone(s.id, 15_000);
  });

  it("never destroys a sandbox with an RPC in flight; the lease restarts when it ends", async () => {
    const s = (await e.grpc.createSandbox({ leaseTtl: TTL })).sandbox!;
    const r = await collectExec(e.connect2.exec({ sandboxId: s.id, command: { case: "shell", value: "sleep 4; echo survived" } }));
    expect(r.stdout).toBe("survived\n");
    expect(r.exited!.exitCode).toBe(0);
    expect(await exists(s.id)).toBe(true);
    const lease = (await e.grpc.getSandbox({ sandboxId: s.id })).sandbox!.leaseExpiresAt!;
    expect(timestampDate(lease).getTime()).toBeGreaterThan(Date.now());
    await waitGone(s.id, 15_000);
  });
});

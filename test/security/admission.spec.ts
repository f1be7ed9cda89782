/**
 * Attack: take more of the host than it has. Creates that do not fit beside
 * the sandboxes already running are refused with RESOURCE_EXHAUSTED naming
 * the setting (memory, disk: server/providers/local/admission.ts), and the
 * instance cgroup caps every sandbox's processes together, so a sandbox that
 * forks as much as it may cannot take the host's (or a neighbour's past the
 * total) pids. The fork attack runs from inside real sandboxes.
 */
import { readFileSync, statfsSync } from "node:fs";
import os from "node:os";
import { afterEach, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { defaultTotals } from "../../server/providers/local/admission.js";
import { collectExec, startE2E, type E2E } from "../e2e/harness.js";

const N = 15;
let e: E2E | undefined;
afterEach(async () => {
  await e?.stop();
  e = undefined;
});

async function refused(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (x: unknown) => x);
  expect(err, "the create should have been refused").toBeInstanceOf(ConnectError);
  expect((err as ConnectError).code).toBe(Code.ResourceExhausted);
  expect((err as ConnectError).rawMessage).toMatch(pattern);
}

describe("admission control", () => {
  it("derives its totals from the host: memory less a reserve, pid_max less a reserve", async () => {
    const t = await defaultTotals("/");
    const memMiB = Math.floor(os.totalmem() / 2 ** 20);
    expect(t.totalMemoryMiB).toBeLessThan(memMiB - 1000);
    expect(t.totalMemoryMiB).toBeGreaterThan(memMiB / 2);
    const pidMax = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8"));
    expect(t.totalPids).toBe(pidMax - Math.max(4096, Math.ceil(pidMax / 4)));
    expect(t.diskReserveGiB).toBeGreaterThanOrEqual(2);
  });

  it("refuses a second create whose memory does not fit beside the first (22 GB twice on a 24 GB host)", async () => {
    e = await startE2E(N);
    const half = Math.floor(((await defaultTotals("/")).totalMemoryMiB * 2) / 3);
    const first = await e.grpc.createSandbox({ resources: { memoryMib: half } });
    expect(first.sandbox?.resources?.memoryMib).toBe(half);
    await refused(e.grpc.createSandbox({ resources: { memoryMib: half } }), /not enough memory: .*SANDBOXD_LOCAL_TOTAL_MEMORY_MIB/);
    // Freed memory is admitted again.
    await e.grpc.destroySandbox({ sandboxId: first.sandbox!.id });
    const again = await e.grpc.createSandbox({ resources: { memoryMib: half } });
    await e.grpc.destroySandbox({ sandboxId: again.sandbox!.id });
  });

  it("refuses a disk larger than the free space less the reserve, making nothing", async () => {
    e = await startE2E(N, { SANDBOXD_LOCAL_MAX_DISK_GIB: "100000" });
    const s = statfsSync("/");
    const freeGiB = Math.floor((s.bavail * s.bsize) / 2 ** 30);
    await refused(e.grpc.createSandbox({ resources: { diskGib: freeGiB + 1 } }), /not enough disk: .*SANDBOXD_LOCAL_DISK_RESERVE_GIB/);
    expect((await e.grpc.listSandboxes({})).sandboxes).toEqual([]);
  });

  it("admits a sandbox only if every sandbox can still fork up to its cap: a fork bomb starves no neighbour", async () => {
    // Each sandbox may hold 200 + 64 (sshd's reserve) pids: two fit in 528, a third does not.
    e = await startE2E(N, { SANDBOXD_LOCAL_PIDS_MAX: "200", SANDBOXD_LOCAL_TOTAL_PIDS: "528" });
    const [a, b] = await Promise.all([e.grpc.createSandbox({}), e.grpc.createSandbox({})]);
    await refused(e.grpc.createSandbox({}), /not enough pids: .*SANDBOXD_LOCAL_TOTAL_PIDS/);
    // Start as many sleepers as the caps let (python: bash would retry a refused fork for seconds), report how many started.
    const fork = (n: number) =>
      `python3 -c 'import os, time\nn = 0\nfor i in range(${n}):\n  try: pid = os.fork()\n  except OSError: break\n  if pid == 0:\n    os.closerange(0, 3); time.sleep(60); os._exit(0)\n  n += 1\nprint(n)'`;
    const inA = Number((await collectExec(e.grpc.exec({ sandboxId: a.sandbox!.id, command: { case: "shell", value: fork(400) } }))).stdout.trim());
    // A is stopped by its own cap (200 less its shell and python)...
    expect(inA).toBeGreaterThan(180);
    expect(inA).toBeLessThan(200);
    // ...and B, after it, still gets its whole share.
    const inB = Number((await collectExec(e.grpc.exec({ sandboxId: b.sandbox!.id, command: { case: "shell", value: fork(400) } }))).stdout.trim());
    expect(inB).toBe(inA);
  });
});

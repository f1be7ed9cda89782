/**
 * A fork bomb in a sandbox (one that also burns CPU in every process) must not
 * lock its owner out: a new Exec starts within 1 s (sshd's share of the
 * sandbox's CPU and pids reserve carry it until its header is out), and
 * cancelling the bomb's Exec kills the whole bomb at once (sandboxd's kill
 * never joins the sandbox's starved user cgroup).
 */
import { promises as fs } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalRuntime } from "../../server/providers/local/index.js";
import { collectExec, startE2E, type E2E } from "./harness.js";

let e: E2E;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Exec under a fork bomb (local)", () => {
  beforeAll(async () => {
    e = await startE2E(9);
  });
  afterAll(async () => {
    await e?.stop();
  });

  it("starts new Execs within 1 s while the bomb runs, and cancelling the bomb's Exec ends it", async () => {
    const id = (await e.grpc.createSandbox({ resources: { cores: 1, memoryMib: 512 } })).sandbox!.id;
    const runtime = (e.server.manager as unknown as { o: { provider: LocalRuntime } }).o.provider;
    const userPidsFile = runtime.cgroups.userProcs(id).replace("cgroup.procs", "pids.current");
    const userPids = async () => Number(await fs.readFile(userPidsFile, "utf8"));

    const abort = new AbortController();
    const bomb = collectExec(e.grpc.exec(
      { sandboxId: id, command: { case: "shell", value: "exec 2>/dev/null; f(){ f & f & while :; do :; done; }; f" } },
      { signal: abort.signal },
    )).catch((err: unknown) => err);
    let peak = 0;
    for (const end = Date.now() + 60_000; peak < 1024 && Date.now() < end; await sleep(100)) peak = Math.max(peak, await userPids());
    expect(peak).toBe(1024); // every pid of the user's share is taken
    await sleep(1000); // well into the storm

    const startedMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      let out = "";
      let exitCode: number | undefined;
      for await (const m of e.grpc.exec({ sandboxId: id, command: { case: "shell", value: `echo alive ${i}` } }, { timeoutMs: 60_000 })) {
        if (m.event.case === "started") startedMs.push(Math.round(performance.now() - t0));
        else if (m.event.case === "stdout") out += Buffer.from(m.event.value).toString();
        else if (m.event.case === "exited") exitCode = m.event.value.exitCode;
      }
      expect(out).toBe(`alive ${i}\n`);
      expect(exitCode).toBe(0);
    }
    console.log(`[fork bomb] Exec started after (ms): ${startedMs.join(" ")}`);
    for (const ms of startedMs) expect(ms).toBeLessThan(1000);

    // The owner's way out: cancel the bomb's RPC; its process group is killed from the control path.
    abort.abort();
    await bomb;
    let left = await userPids();
    for (const end = Date.now() + 10_000; left > 0 && Date.now() < end; await sleep(50)) left = await userPids();
    expect(left).toBe(0);
    const after = await collectExec(e.grpc.exec({ sandboxId: id, command: { case: "shell", value: "ls / >/dev/null && echo forks-again" } }));
    expect(after.stdout).toBe("forks-again\n");
  });
});

/**
 * Resource limits of local sandboxes: a fork bomb is contained and the
 * sandbox keeps answering, a memory hog is the one OOM-killed, CPU quota holds.
 */
import { promises as fs } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SandboxHandle, SandboxSpec } from "../provider.js";
import { LocalRuntime } from "./runtime.js";
import { connect, exec, sshExec, startExec } from "./testing.js";

const PIDS_MAX = 300;
const spec = (over: Partial<SandboxSpec> = {}): SandboxSpec => ({ cores: 1, memoryMiB: 512, diskGiB: 1, internet: false, labels: {}, ...over });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("LocalRuntime limits", () => {
  const rt = new LocalRuntime({ instance: "sandboxd-t-lim", subnet: "198.18.203.0/24", pidsMax: PIDS_MAX });
  const made: SandboxHandle[] = [];
  const create = async (over: Partial<SandboxSpec> = {}) => {
    const h = await rt.create(spec(over));
    made.push(h);
    return h;
  };
  /** A control file of the sandbox's own cgroup (v1: in the given controller's hierarchy). */
  const cgFile = (id: string, controller: string, file: string) => {
    const l = rt.cgroups.layout;
    return l.version === 2 ? `${l.root}/${rt.instance}/${id}/${file}` : `${l.mounts.get(controller)}/${rt.instance}/${id}/${file}`;
  };
  const userPids = async (id: string) => Number(await fs.readFile(rt.cgroups.userProcs(id).replace("cgroup.procs", "pids.current"), "utf8"));

  beforeAll(async () => {
    await rt.start();
  });

  afterAll(async () => {
    await Promise.allSettled(made.map((h) => rt.destroy(h.id)));
    await rt.purge();
  });

  it("contains a fork bomb; the sandbox answers new SSH commands while it runs and after it is killed", async () => {
    const h = await create();
    const bombConn = await connect(h.ssh);
    try {
      const bomb = await startExec(bombConn, "echo $$; exec 2>/dev/null; f(){ f | f & }; f");
      const pgid = Number(await bomb.firstLine);
      expect(pgid).toBeGreaterThan(1);
      // Wait until the bomb has used up the user share of pids.
      const deadline = Date.now() + 30_000;
      // (Read once per round: bomb processes keep dying and respawning, so a second read may be one short.)
      let peak = 0;
      while ((peak = Math.max(peak, await userPids(h.id))) < PIDS_MAX && Date.now() < deadline) await sleep(100);
      expect(peak).toBe(PIDS_MAX);

      const t0 = performance.now();
      const during = await sshExec(h.ssh, "echo alive", { timeoutMs: 20_000 });
      console.log(`[local] new SSH command during fork bomb: ${(performance.now() - t0).toFixed(0)} ms`);
      expect(during.stdout).toBe("alive\n");
      expect(await userPids(h.id)).toBeLessThanOrEqual(PIDS_MAX);

      // The data plane's way to stop a command: SIGKILL its process group.
      const killer = await sshExec(h.ssh, `kill -KILL -- -${pgid}; echo sent`, { timeoutMs: 20_000 });
      expect(killer.stdout).toBe("sent\n");
      await bomb.done;
      const settle = Date.now() + 10_000;
      while ((await userPids(h.id)) > 0 && Date.now() < settle) await sleep(50);
      expect(await userPids(h.id)).toBe(0);
      const after = await sshExec(h.ssh, "ls / >/dev/null && echo forks-again");
      expect(after.stdout).toBe("forks-again\n");
    } finally {
      bombConn.end();
    }
  });

  it("OOM-kills a memory hog, not sshd, and keeps answering", async () => {
    const h = await create({ memoryMiB: 128 });
    const sshdBefore = (await sshExec(h.ssh, "pgrep -o -x sshd")).stdout.trim();
    const hog = await sshExec(h.ssh, "tail /dev/zero", { timeoutMs: 60_000 });
    expect(hog.signal === "SIGKILL" || hog.signal === "KILL" || hog.code === 137, JSON.stringify(hog)).toBe(true);
    const after = await sshExec(h.ssh, "pgrep -o -x sshd; echo ok");
    expect(after.stdout).toBe(`${sshdBefore}\nok\n`);
    const l = rt.cgroups.layout;
    const events = await fs.readFile(cgFile(h.id, "memory", l.version === 2 ? "memory.events" : "memory.oom_control"), "utf8");
    expect(Number(/oom_kill (\d+)/.exec(events)?.[1])).toBeGreaterThanOrEqual(1);
    if (l.version === 1) {
      const limit = await fs.readFile(cgFile(h.id, "memory", "memory.memsw.limit_in_bytes"), "utf8").catch(() => "");
      if (limit) expect(Number(limit)).toBe(128 * 2 ** 20); // no swap on top of memory
    }
  });

  it("holds the CPU quota of the requested cores", async () => {
    const h = await create({ cores: 1 });
    const client = await connect(h.ssh);
    try {
      // Two busy loops for 2 s on a 1-core sandbox: about 2 s of CPU, not 4.
      const r = await exec(client, "TIMEFORMAT='%U %S'; time (for i in 1 2; do timeout 2 sh -c 'while :; do :; done' & done; wait) 2>&1");
      const [user, sys] = (r.stdout + r.stderr).trim().split("\n").pop()!.split(" ").map(Number);
      console.log(`[local] 2 busy loops × 2 s on 1 core used ${(user! + sys!).toFixed(2)} s CPU`);
      expect(user! + sys!, JSON.stringify(r)).toBeLessThan(3);
      expect(user! + sys!, JSON.stringify(r)).toBeGreaterThan(0.5);
      // (Not asserting throttling: on a busy host the loops may get less than the quota anyway.)
      const l = rt.cgroups.layout;
      const quota = await fs.readFile(cgFile(h.id, "cpu", l.version === 2 ? "cpu.max" : "cpu.cfs_quota_us"), "utf8");
      expect(quota.trim()).toBe(l.version === 2 ? "100000 100000" : "100000");
    } finally {
      client.end();
    }
  });
});

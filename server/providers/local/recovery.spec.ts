/**
 * A runtime killed with SIGKILL (in a child process, some creates midway) and
 * a new one started on the same instance: complete live sandboxes are adopted
 * (same address, same pinned key, reachable at once), everything else of the
 * instance is removed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { pidAlive, run } from "./host.js";
import { LocalRuntime } from "./runtime.js";
import { sshExec } from "./testing.js";
import { instanceLeftovers, leftovers, NOTHING } from "./testing-host.js";

const INSTANCE = "sandboxd-t-rec";
const SUBNET = "198.18.204.0/24";
const CHILD = fileURLToPath(new URL("./testing-child.ts", import.meta.url));

interface Made {
  id: string;
  address: string;
  hostKey: string;
  internet: boolean;
}

/** Runs a runtime in a child process; resolves once it has made `complete` sandboxes and started the midway creates. */
function runChild(complete: number, midway: number): Promise<{ child: ChildProcess; made: Made[] }> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, INSTANCE, SUBNET, String(complete), String(midway)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const made: Made[] = [];
    let buf = "";
    child.stdout!.on("data", (b: Buffer) => {
      buf += b.toString();
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === "MIDWAY") resolve({ child, made });
        else made.push(JSON.parse(line) as Made);
      }
    });
    child.once("exit", (code) => reject(new Error(`runtime child exited early (${code})`)));
  });
}

describe("LocalRuntime recovery", () => {
  let rt: LocalRuntime | undefined;
  let child: ChildProcess | undefined;
  const strays: number[] = [];

  afterAll(async () => {
    child?.kill("SIGKILL");
    strays.forEach((p) => pidAlive(p) && process.kill(p, "SIGKILL"));
    const cleaner = rt ?? new LocalRuntime({ instance: INSTANCE, subnet: SUBNET });
    await cleaner.purge();
    // Including the host-wide uid range claims of sandboxes the killed runtime left midway.
    expect(await instanceLeftovers(cleaner)).toEqual([]);
  });

  it("adopts complete live sandboxes after kill -9 and removes every leftover", async () => {
    // A clean slate even if an earlier run of this test was killed.
    await new LocalRuntime({ instance: INSTANCE, subnet: SUBNET }).purge();

    const started = await runChild(3, 3);
    child = started.child;
    const made = started.made;
    // While it lives, no second runtime may take the instance (it would take its sandboxes for leftovers).
    await expect(new LocalRuntime({ instance: INSTANCE, subnet: SUBNET }).start()).rejects.toMatchObject({ kind: "failed_precondition" });
    await new Promise((r) => setTimeout(r, 40)); // midway creates at different stages
    child.kill("SIGKILL");
    await new Promise((r) => child!.once("exit", r));
    child = undefined;
    expect(made).toHaveLength(3);
    const [alive1, dead, alive2] = made as [Made, Made, Made];

    // More ways to be left over: a dead jail, a namespace with a process outside
    // any cgroup, a cgroup with a process but nothing else, a broken state dir.
    const probe = new LocalRuntime({ instance: INSTANCE, subnet: SUBNET });
    const state = JSON.parse(await fs.readFile(`${probe.stateDir}/sandboxes/${dead.id}/state.json`, "utf8")) as { jailPid: number };
    process.kill(state.jailPid, "SIGKILL");
    await run("ip", ["netns", "add", `${INSTANCE}-sbx-orphan0001`]);
    const inNetns = spawn("nsenter", [`--net=/run/netns/${INSTANCE}-sbx-orphan0001`, "--", "sleep", "600"], { detached: true, stdio: "ignore" });
    strays.push(inNetns.pid!);
    const inCgroup = spawn("sleep", ["600"], { detached: true, stdio: "ignore" });
    strays.push(inCgroup.pid!);
    const pidsRoot = (await fs.readFile("/proc/self/mountinfo", "utf8")).split("\n").find((l) => / - cgroup \S+ \S*\bpids\b/.test(l))?.split(" ")[4];
    const unified = !pidsRoot;
    const orphanCg = unified ? `/sys/fs/cgroup/${INSTANCE}/sbx-orphan0002` : `${pidsRoot}/${INSTANCE}/sbx-orphan0002`;
    await fs.mkdir(orphanCg, { recursive: true });
    await fs.writeFile(`${orphanCg}/cgroup.procs`, String(inCgroup.pid));
    await fs.mkdir(`${probe.stateDir}/sandboxes/sbx-orphan0003`, { recursive: true });
    await fs.writeFile(`${probe.stateDir}/sandboxes/sbx-orphan0003/state.json`, "{ not json");

    const netnsBefore = (await fs.readdir("/run/netns")).filter((n) => n.startsWith(`${INSTANCE}-`));
    const dirsBefore = await fs.readdir(`${probe.stateDir}/sandboxes`);
    console.log(`[local] before restart: ${netnsBefore.length} netns, ${dirsBefore.length} state dirs (3 complete, 3 midway, fakes)`);
    // A midway create may just have finished (state complete) before the kill: that one is adopted too.
    const finishedMidway: string[] = [];
    for (const id of dirsBefore.filter((d) => !made.some((m) => m.id === d))) {
      const text = await fs.readFile(`${probe.stateDir}/sandboxes/${id}/state.json`, "utf8").catch(() => "");
      if (text.includes('"complete": true')) finishedMidway.push(id);
    }
    rt = new LocalRuntime({ instance: INSTANCE, subnet: SUBNET });
    const t0 = performance.now();
    await rt.start();
    console.log(`[local] restart with recovery: ${(performance.now() - t0).toFixed(0)} ms`);

    const list = await rt.list();
    expect(list.map((h) => h.id).sort()).toEqual([alive1.id, alive2.id, ...finishedMidway].sort());
    for (const m of [alive1, alive2]) {
      const h = (await rt.get(m.id))!;
      expect(h).toMatchObject({ state: "running", address: m.address });
      expect(h.ssh.hostKey).toBe(m.hostKey);
      expect(h.spec.internet).toBe(m.internet);
      expect((await sshExec(h.ssh, "hostname")).stdout).toBe(`${m.id}\n`);
    }
    const midwayAddresses = finishedMidway.map((id) => list.find((h) => h.id === id)!.address);
    expect((await rt.firewall.members()).sort()).toEqual([alive2.address, ...midwayAddresses].sort());
    expect(await leftovers(rt, [alive1.id, alive2.id, ...finishedMidway])).toEqual(NOTHING);
    expect(strays.filter((p) => pidAlive(p) && !isZombie(p))).toEqual([]);

    // Adopted sandboxes are fully managed: the new runtime can make more and destroy them.
    const fresh = await rt.create({ cores: 1, memoryMiB: 128, diskGiB: 1, internet: false, labels: {} });
    expect([alive1.address, alive2.address]).not.toContain(fresh.address);
    await rt.destroy(alive1.id);
    await rt.destroy(fresh.id);
    expect(await leftovers(rt, [alive2.id, ...finishedMidway])).toEqual(NOTHING);
  });
});

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return true;
  }
}

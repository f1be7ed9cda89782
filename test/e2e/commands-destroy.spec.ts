/**
 * Issue 12: "Nothing leaks when a sandbox is destroyed with background
 * commands running" (local provider, where the host can be inspected): two
 * background commands (one with children, one on a PTY; sbx-run supervisors
 * setsid'd out of their SSH sessions) and a live Attach to one of them;
 * DestroySandbox ends the Attach at once, and afterwards no process of the
 * sandbox is left on the host (by pid, by command line, by cgroup), its
 * cgroups and network namespace are gone, and this sandboxd holds no SSH
 * target or connection pool for it.
 */
import { promises as fs } from "node:fs";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cgroups, detectCgroups } from "../../server/providers/local/cgroups.js";
import type { SessionRegistry } from "../../server/ssh/index.js";
import { e2eInstance, startE2E, type E2E, type SandboxClient } from "./harness.js";

const N = 26;
const run = promisify(execFile);
const MARKER = `4245${Math.floor(Math.random() * 1000)}`;

/** Host processes whose command line contains `needle`: pid → command line. */
async function hostProcesses(needle: string): Promise<Map<number, string>> {
  const found = new Map<number, string>();
  for (const name of await fs.readdir("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const cmdline = await fs.readFile(`/proc/${name}/cmdline`, "latin1").catch(() => "");
    if (cmdline.includes(needle)) found.set(Number(name), cmdline.replace(/\0/g, " ").trim());
  }
  return found;
}

/** The process's start time (field 22 of /proc/<pid>/stat), to tell it from a later one with its pid. */
async function startTime(pid: number): Promise<string | undefined> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, "latin1").catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}

describe("destroying a sandbox with background commands running (local)", () => {
  let e: E2E;
  let api: SandboxClient;
  let cgroups: Cgroups;
  const { instance } = e2eInstance(N);

  beforeAll(async () => {
    e = await startE2E(N);
    api = e.grpc;
    cgroups = new Cgroups(await detectCgroups(), instance, 0);
  }, 60_000);
  afterAll(async () => {
    await e?.stop();
  });

  it("leaves no process, cgroup, namespace or SSH connection behind, and ends a live Attach at once", async () => {
    const sandboxId = (await api.createSandbox({})).sandbox!.id;
    const started: string[] = [];
    for (const req of [
      { command: { case: "shell" as const, value: `sleep ${MARKER}1 & sleep ${MARKER}2 & wait` }, tag: "kids" },
      { command: { case: "shell" as const, value: `while :; do echo tick; sleep ${MARKER}3; done` }, tag: "pty", pty: { rows: 24, cols: 80 } },
    ]) {
      const ac = new AbortController();
      for await (const m of api.exec({ sandboxId, background: true, ...req }, { signal: ac.signal })) {
        if (m.event.case === "started") {
          started.push(m.event.value.execId);
          break;
        }
      }
      ac.abort();
    }
    expect(started).toHaveLength(2);
    const listed = (await api.listCommands({ sandboxId })).commands;
    expect(listed.filter((c) => c.running).map((c) => c.tag).sort()).toEqual(["kids", "pty"]);

    // A live Attach to the PTY command, streaming when the sandbox goes.
    const attach = (async () => {
      let ticks = 0;
      try {
        for await (const m of api.attach({ command: { sandboxId, command: { case: "tag", value: "pty" } } })) {
          if (m.event.case === "stdout") ticks++;
        }
        return { ticks, outcome: "ended" };
      } catch (err) {
        return { ticks, outcome: Code[ConnectError.from(err).code] };
      }
    })();

    // What the sandbox runs, seen from the host: the commands, their children and sbx-run's supervisors.
    let procs = new Map<number, string>();
    const deadline = Date.now() + 10_000;
    while (procs.size < 7) {
      if (Date.now() > deadline) throw new Error(`expected 3 sleeps, 2 shells and 2 supervisors, found ${JSON.stringify([...procs.values()])}`);
      await new Promise((r) => setTimeout(r, 100));
      procs = await hostProcesses(MARKER);
    }
    const kinds = [...procs.values()].map((c) => (/sbx-run-\d+ start/.test(c) ? "supervisor" : c.startsWith("sleep") ? "sleep" : c.split(" ")[0]));
    expect(kinds.filter((k) => k === "supervisor")).toHaveLength(2);
    expect(kinds.filter((k) => k === "sleep")).toHaveLength(3);
    const inCgroup = await cgroups.pids(sandboxId);
    for (const pid of procs.keys()) expect(inCgroup, `pid ${pid} (${procs.get(pid)}) in the sandbox's cgroup`).toContain(pid);
    const starts = new Map(await Promise.all([...inCgroup].map(async (p) => [p, await startTime(p)] as const)));
    const registry = (e.server.manager as unknown as { o: { registry: SessionRegistry } }).o.registry;
    const internals = registry as unknown as { targets: Map<string, unknown>; pools: Map<string, unknown> };
    expect(internals.targets.has(sandboxId)).toBe(true);
    expect(internals.pools.has(sandboxId)).toBe(true);
    expect(registry.stats(sandboxId).connections).toBeGreaterThan(0);

    const t0 = Date.now();
    await api.destroySandbox({ sandboxId });
    const destroyMs = Date.now() - t0;
    const a = await attach;
    const attachEndedMs = Date.now() - t0;
    console.log(`[destroy] took ${destroyMs} ms; the live Attach ended ${attachEndedMs} ms after the call with ${a.outcome} (${a.ticks} chunks seen); ${inCgroup.length} processes were in the sandbox`);
    expect(a.ticks).toBeGreaterThan(0);
    expect(a.outcome).not.toBe("ended"); // cut off, not a normal end: no exit event was made up
    expect(attachEndedMs).toBeLessThan(destroyMs + 2_000);

    // No process is left: not by command line, not by pid (a pid reused since has another start time), not in a cgroup.
    expect([...(await hostProcesses(MARKER)).values()]).toEqual([]);
    // (A zombie is dead: the jail's outer bwrap may wait a moment for init to reap it.)
    const alive = async () => {
      const left: string[] = [];
      for (const [pid, t] of starts) {
        const stat = await fs.readFile(`/proc/${pid}/stat`, "latin1").catch(() => "");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        if (stat && fields[19] === t && fields[0] !== "Z") left.push(`${stat.slice(0, stat.lastIndexOf(")") + 3)}`);
      }
      return left;
    };
    expect(await alive()).toEqual([]);
    expect(await cgroups.pids(sandboxId)).toEqual([]);
    expect(await cgroups.listIds()).not.toContain(sandboxId);
    const { stdout: netns } = await run("ip", ["netns", "list"]);
    expect(netns).not.toContain(sandboxId);
    await expect(fs.stat(`/var/lib/sandboxd/${instance}/sandboxes/${sandboxId}`)).rejects.toThrow();
    // This sandboxd holds nothing for it: no SSH target, no pool, no connection.
    expect(internals.targets.has(sandboxId)).toBe(false);
    expect(internals.pools.has(sandboxId)).toBe(false);
    expect(registry.stats(sandboxId)).toEqual({ connections: 0, connecting: 0, activeChannels: 0, waiting: 0 });
    // And its commands are gone with it.
    for (const call of [
      () => api.listCommands({ sandboxId }),
      () => api.signalCommand({ command: { sandboxId, command: { case: "tag", value: "kids" } }, signal: "KILL" }),
    ]) {
      const err = await call().then(() => undefined, (x: unknown) => ConnectError.from(x));
      expect(err && Code[err.code]).toBe("NotFound");
    }
  });
});

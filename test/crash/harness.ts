/**
 * Crash tests run sandboxd as child processes (`node --import tsx
 * server/main.ts`, as an operator does) so they can `kill -9` it. With the
 * proxmox provider the PVE emulator runs in the test process and outlives
 * the servers, as a real Proxmox does.
 */
import { promises as fs } from "node:fs";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { LocalRuntime } from "../../server/providers/local/index.js";
import { proxmoxEnvOf, type Connection } from "../pve-emulator/index.js";
import { startSandboxd, type SandboxdProcess } from "../fixtures/sandboxd-process.js";
import type { SandboxClient } from "../e2e/harness.js";

export type { SandboxClient };
export interface Sandboxd extends SandboxdProcess {
  client: SandboxClient;
}

const run = promisify(execFile);

export const LOCAL = { instance: "sandboxd-t-crash", subnet: "198.18.235.0/24" };
export const CRASH_PVE = { instance: "sandboxd-t-crash-pve", subnet: "198.18.236.0/24" };
export const REPLICAS_PVE = { instance: "sandboxd-t-repl-pve", subnet: "198.18.237.0/24" };

export const EMULATOR_TIMING = { cloneMs: 1500, startMs: 50, ipDelayMs: 100, stopMs: 10, destroyMs: 10, authFailDelayMs: 100 };

/** Fast reaping and sync, small sandboxes, logs kept for failure messages. */
const COMMON = {
  SANDBOXD_LEASE_REAP_INTERVAL: "200ms",
  SANDBOXD_SYNC_INTERVAL: "500ms",
  SANDBOXD_DEFAULT_MEMORY_MIB: "256",
  SANDBOXD_DEFAULT_DISK_GIB: "1",
  SANDBOXD_LOG_LEVEL: "info",
};

export function localEnv(): Record<string, string> {
  return { ...COMMON, SANDBOXD_PROVIDER: "local", SANDBOXD_LOCAL_INSTANCE: LOCAL.instance, SANDBOXD_LOCAL_SUBNET: LOCAL.subnet };
}

export function proxmoxEnv(c: Connection, extra: Record<string, string> = {}): Record<string, string> {
  return { ...COMMON, ...proxmoxEnvOf(c), SANDBOXD_PROXMOX_CREATE_TIMEOUT: "20s", ...extra };
}

export async function sandboxd(env: Record<string, string>): Promise<Sandboxd> {
  const s = await startSandboxd(env);
  return Object.assign(s, { client: createClient(SandboxService, createGrpcTransport({ baseUrl: `http://${s.address}` })) });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` holds, or fails with `what` after `ms`. */
export async function eventually(what: string, ms: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(100);
  }
}

/** What the local runtime instance holds on the host: ids by state dir and by network namespace. */
export async function hostObjects(instance = LOCAL.instance): Promise<{ stateDirs: string[]; netns: string[] }> {
  const stateDirs = await fs.readdir(`/var/lib/sandboxd/${instance}/sandboxes`).catch(() => [] as string[]);
  const { stdout } = await run("ip", ["netns", "list"]);
  const netns = stdout.split("\n").map((l) => l.split(" ")[0]!).filter((n) => n.startsWith(`${instance}-`)).map((n) => n.slice(instance.length + 1));
  return { stateDirs: stateDirs.filter((d) => d.startsWith("sbx-")).sort(), netns: netns.sort() };
}

export async function purgeLocal(o: { instance: string; subnet: string }): Promise<void> {
  await new LocalRuntime(o).purge();
}

/** Shared by the live-server tests: skip without SANDBOXD_ADDR, a client, unique labels. */
import { createHash, randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxdClient, type SandboxdClientOptions } from "../src/index.js";

export const ADDR = process.env["SANDBOXD_ADDR"] ?? "";
export const CONTROL = process.env["SANDBOXD_TEST_CONTROL"] ?? "";
/** For node:test's `skip` option. */
export const skipLive: string | false = ADDR ? false : "SANDBOXD_ADDR is not set (start test/fixtures/live-server.ts)";
export const skipControl: string | false = skipLive || (CONTROL ? false : "SANDBOXD_TEST_CONTROL is not set");

export function newClient(o: SandboxdClientOptions = {}): SandboxdClient {
  return new SandboxdClient({ address: ADDR, ...o });
}

/** A label value no other run uses. */
export function uniqueLabel(): Record<string, string> {
  return { "ts-client-test": randomUUID() };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Crashes sandboxd (kill -9) and starts it again; resolves when it serves. */
export async function restartServer(): Promise<void> {
  const res = await fetch(`${CONTROL}/restart`, { method: "POST" });
  if (res.status !== 200) throw new Error(`restart: HTTP ${res.status}: ${await res.text()}`);
}

/**
 * A lock across test processes (node --test runs files in parallel): the
 * live-server files take it for their whole run, so that the restart tests
 * never cut another file's calls. Re-entrant within a process (the files may
 * also run together in one process, see all.test.mjs); a lock left by a dead
 * process is broken.
 */
const LOCK = join(tmpdir(), `sandboxd-ts-client-tests-${createHash("sha256").update(ADDR).digest("hex").slice(0, 12)}.lock`);
let held = 0;

export async function acquireLiveLock(): Promise<void> {
  if (!ADDR) return;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, "pid"), String(process.pid));
      held = 1;
      process.once("exit", () => rmSync(LOCK, { recursive: true, force: true }));
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    let owner = 0;
    try {
      owner = Number(readFileSync(join(LOCK, "pid"), "utf8"));
    } catch {
      // being written or removed: look again
    }
    if (owner === process.pid) {
      held++;
      return;
    }
    if (owner > 0 && !alive(owner)) rmSync(LOCK, { recursive: true, force: true });
    else await sleep(200);
  }
}

export function releaseLiveLock(): void {
  if (!ADDR || held === 0) return;
  if (--held === 0) rmSync(LOCK, { recursive: true, force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

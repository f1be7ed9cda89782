/**
 * What the data-plane specs run against: a real sandbox of the local runtime
 * (server/providers/local), reached through a SessionRegistry like in
 * production. Needs root.
 *
 * Sandboxes of one spec file share one LocalRuntime, started by the first
 * startSpecSandbox() and purged (everything of the instance removed) when the
 * last of them stops. The instance is named after vitest's worker slot
 * (VITEST_POOL_ID), so files running at the same time never share one, and
 * start() reconciles what a killed earlier run of that slot left behind.
 */
import type { SandboxSpec, SshTarget } from "../providers/provider.js";
import { LocalRuntime } from "../providers/local/index.js";
import { execCollect, type CollectedExec } from "./exec-collect.js";
import { quote } from "./command-line.js";
import { SessionRegistry, type SessionRegistryOptions } from "./session-registry.js";

export interface SpecSandbox {
  /** The sandbox's id, also its id in `registry`. */
  id: string;
  target: SshTarget;
  registry: SessionRegistry;
  homeDir: string;
  /** A fresh directory under the home. */
  workDir: string;
  /** Runs a shell snippet in the sandbox, failing on a non-zero exit. */
  sh(script: string): Promise<string>;
  run(script: string): Promise<CollectedExec>;
  /** Closes the registry and destroys the sandbox (and the runtime after its last sandbox). Idempotent. */
  stop(): Promise<void>;
}

export interface SpecSandboxOptions {
  registry?: SessionRegistryOptions;
  /** Default 2 cores, 2 GiB memory, 3 GiB disk (the files spec round-trips 1 GiB). */
  size?: Partial<Pick<SandboxSpec, "cores" | "memoryMiB" | "diskGiB">>;
}

const HOME = "/home/sandbox";

/** Worker slot 1 → instance sandboxd-t-ssh1 on 198.18.210.0/24, slot 2 → 198.18.211.0/24, … */
function instanceOfWorker(): { instance: string; subnet: string } {
  const slot = Number(process.env.VITEST_POOL_ID ?? "1");
  if (!Number.isInteger(slot) || slot < 1 || slot > 39) throw new Error(`unexpected VITEST_POOL_ID ${process.env.VITEST_POOL_ID}`);
  return { instance: `sandboxd-t-ssh${slot}`, subnet: `198.18.${209 + slot}.0/24` };
}

interface Shared {
  rt: LocalRuntime;
  ready: Promise<void>;
  users: number;
}
let shared: Shared | undefined;
/** A purge still running: the next runtime of the same instance must wait for it. */
let purging: Promise<unknown> = Promise.resolve();

async function acquire(): Promise<Shared> {
  if (!shared) {
    await purging;
  }
  if (!shared) {
    const rt = new LocalRuntime({ ...instanceOfWorker(), limits: { maxSandboxes: 8 } });
    shared = { rt, ready: rt.start(), users: 0 };
  }
  const s = shared;
  s.users++;
  try {
    await s.ready;
  } catch (err) {
    await release(s).catch(() => {}); // purge what the failed start made; the start error says more
    throw err;
  }
  return s;
}

async function release(s: Shared): Promise<void> {
  if (--s.users > 0) return;
  if (shared === s) shared = undefined;
  const p = s.rt.purge();
  purging = p.catch(() => {});
  await p;
}

export async function startSpecSandbox(options: SpecSandboxOptions = {}): Promise<SpecSandbox> {
  const s = await acquire();
  const rt = s.rt;
  const registry = new SessionRegistry(options.registry);
  let id: string | undefined;
  const cleanup = async () => {
    try {
      await registry.closeAll();
      if (id) await rt.destroy(id);
    } finally {
      await release(s);
    }
  };
  try {
    const handle = await rt.create({
      cores: 2, memoryMiB: 2048, diskGiB: 3, ...options.size,
      internet: false, labels: { purpose: "server-ssh-spec" },
    });
    id = handle.id;
    registry.register(handle.id, handle.ssh);
    const sandboxId = handle.id;
    const run = (script: string) => execCollect(registry, sandboxId, { shell: script });
    const sh = async (script: string) => {
      const r = await run(script);
      if (r.exitCode !== 0) throw new Error(`${script}: exit ${r.exitCode} ${r.signal ?? ""} ${r.stderr.toString()}`);
      return r.stdout.toString();
    };
    const workDir = (await sh(`mktemp -d ${quote(HOME + "/spec.XXXXXX")}`)).trim();
    let stopped: Promise<void> | undefined;
    return {
      id: handle.id,
      target: handle.ssh,
      registry,
      homeDir: HOME,
      workDir,
      sh,
      run,
      stop: () => (stopped ??= cleanup()),
    };
  } catch (err) {
    await cleanup().catch(() => {});
    throw err;
  }
}

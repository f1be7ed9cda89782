/**
 * Per-sandbox state on disk: <stateDir>/sandboxes/<id>/state.json, written
 * atomically (temp file + rename). It holds what a restarted runtime needs to
 * adopt the sandbox or clean it up; `complete` is set by the last write of a
 * create, so a half-made sandbox is never adopted.
 */
import { promises as fs } from "node:fs";
import type { CreateRequestKey, SandboxSpec, StoredLease } from "../provider.js";
import { failedPrecondition } from "../../errors.js";
import { processStartTime, readText } from "./host.js";
import { ID_PATTERN } from "./names.js";

export interface SandboxRecord {
  version: 1;
  id: string;
  spec: SandboxSpec;
  address: string;
  netns: string;
  veth: string;
  /** The sandbox's pinned host key, an OpenSSH public key line. */
  hostKey: string;
  createdAt: string;
  /** Pid (host view) of the jail's init, the inner bwrap: pid 1 of the jail's pid namespace. */
  jailPid?: number;
  /** First host uid/gid of the sandbox's user namespace range (uids.ts), claimed host-wide until teardown. */
  uidBase?: number;
  /** Loop device the disk image was mounted from (informational; found via sysfs on cleanup). */
  loopDevice?: string;
  /** The lease, stored from the first write on (absent only in records of older versions). */
  lease?: StoredLease;
  /** The CreateSandbox request_id it was made for, if any. */
  request?: CreateRequestKey;
  /** Its egress allowlist ("10.0.0.0/8", "10.1.2.3:5432"), when it has one. */
  egressAllow?: string[];
  complete: boolean;
}

export class StateStore {
  readonly root: string;

  constructor(readonly stateDir: string) {
    this.root = `${stateDir}/sandboxes`;
  }

  dir(id: string): string {
    return `${this.root}/${id}`;
  }

  async write(record: SandboxRecord): Promise<void> {
    const path = `${this.dir(record.id)}/state.json`;
    const tmp = `${path}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(record, null, 2), { mode: 0o600 });
    await fs.rename(tmp, path);
  }

  async read(id: string): Promise<SandboxRecord | undefined> {
    try {
      const rec = JSON.parse(await fs.readFile(`${this.dir(id)}/state.json`, "utf8")) as SandboxRecord;
      return rec.version === 1 && rec.id === id ? rec : undefined;
    } catch {
      return undefined;
    }
  }

  async listIds(): Promise<string[]> {
    const names = await fs.readdir(this.root).catch(() => [] as string[]);
    return names.filter((n) => ID_PATTERN.test(n));
  }

  async remove(id: string): Promise<void> {
    await fs.rm(this.dir(id), { recursive: true, force: true });
  }
}

/**
 * One live runtime per instance: a second one would take the first one's
 * sandboxes for leftovers. The lock file holds "<pid> <start time>"; a lock
 * whose process is gone (killed runtime) is stale and taken over.
 */
export async function lockInstance(stateDir: string): Promise<void> {
  const path = `${stateDir}/runtime.lock`;
  const mine = `${process.pid} ${await processStartTime(process.pid)}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.writeFile(path, mine, { flag: "wx", mode: 0o600 });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const held = ((await readText(path)) ?? "").trim();
    if (held === mine) return;
    const [pid, start] = held.split(" ");
    if (pid && start && (await processStartTime(Number(pid))) === start) {
      throw failedPrecondition(`instance already run by pid ${pid} (${path})`);
    }
    await fs.rm(path, { force: true });
  }
  throw failedPrecondition(`cannot take ${path}`);
}

export async function unlockInstance(stateDir: string): Promise<void> {
  const path = `${stateDir}/runtime.lock`;
  if (((await readText(path)) ?? "").startsWith(`${process.pid} `)) await fs.rm(path, { force: true });
}

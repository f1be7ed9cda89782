/**
 * Per-sandbox state on disk: <stateDir>/sandboxes/<id>/state.json, written
 * atomically (temp file + rename). It holds what a restarted runtime needs to
 * adopt the sandbox or clean it up; `complete` is set by the last write of a
 * create, so a half-made sandbox is never adopted.
 */
import { promises as fs } from "node:fs";
import type { SandboxSpec } from "../provider.js";
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
  /** Loop device the disk image was mounted from (informational; found via sysfs on cleanup). */
  loopDevice?: string;
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

/** Running CTs are real LocalRuntime sandboxes: made on start, destroyed on stop or destroy. */
import { LocalRuntime } from "../../server/providers/local/index.js";
import type { LocalRuntimeOptions } from "../../server/providers/local/options.js";
import type { SandboxHandle } from "../../server/providers/provider.js";
import { isSandboxError } from "../../server/errors.js";

export interface SandboxSpecIn {
  cores: number;
  memoryMiB: number;
  diskGiB: number;
  internet: boolean;
  vmid: number;
}

export class Sandboxes {
  readonly runtime: LocalRuntime;
  private started?: Promise<void>;
  /** Every internet change, in order (for tests). */
  readonly internetChanges: { id: string; enabled: boolean }[] = [];
  /** Every allowlist the firewall rules gave a sandbox, in order, with what went wrong (for tests). */
  readonly allowChanges: { id: string; entries: string[]; error?: string }[] = [];

  constructor(options: LocalRuntimeOptions) {
    this.runtime = new LocalRuntime(options);
  }

  /** Starts the runtime on first use, so an emulator that never starts a CT needs no host setup. */
  private ready(): Promise<void> {
    this.started ??= this.runtime.start();
    return this.started;
  }

  async create(s: SandboxSpecIn): Promise<SandboxHandle> {
    await this.ready();
    const memoryMiB = Math.min(Math.max(s.memoryMiB, 64), this.runtime.limits.maxMemoryMiB);
    const cores = Math.min(s.cores, this.runtime.limits.maxCores);
    const diskGiB = Math.min(s.diskGiB, this.runtime.limits.maxDiskGiB);
    return this.runtime.create({ cores, memoryMiB, diskGiB, internet: s.internet, labels: { "pve-vmid": String(s.vmid) } });
  }

  async destroy(id: string): Promise<void> {
    await this.ready();
    await this.runtime.destroy(id);
  }

  async setInternet(id: string, enabled: boolean): Promise<void> {
    await this.ready();
    this.internetChanges.push({ id, enabled });
    await this.runtime.setInternet(id, enabled);
  }

  /**
   * Gives the sandbox the allowlist its CT's firewall rules amount to
   * (fw-rules.ts allowEntries). Entries the runtime refuses (its own
   * networks, loopback) are left out, one by one, as pve-firewall would
   * still apply the others. Never fails: pve-firewall applies rules on its
   * own, after the API call that stored them answered; a failure is kept in
   * `allowChanges`.
   */
  async setEgressAllow(id: string, entries: string[]): Promise<void> {
    const change: { id: string; entries: string[]; error?: string } = { id, entries: [...entries] };
    this.allowChanges.push(change);
    try {
      await this.ready();
      const refused = await this.runtime.setEgressAllow(id, entries).then(() => false, (e: unknown) => {
        if (!isSandboxError(e, "invalid_argument")) throw e;
        return true;
      });
      if (!refused) return;
      const kept: string[] = [];
      for (const entry of entries) {
        await this.runtime.setEgressAllow(id, [...kept, entry]).then(() => kept.push(entry), (e: unknown) => {
          if (!isSandboxError(e, "invalid_argument")) throw e;
        });
      }
      await this.runtime.setEgressAllow(id, kept);
      change.error = `left out: ${entries.filter((x) => !kept.includes(x)).join(", ")}`;
    } catch (e) {
      change.error = String((e as Error)?.message ?? e);
    }
  }

  async list(): Promise<SandboxHandle[]> {
    return this.started ? (await this.ready(), this.runtime.list()) : [];
  }

  /** Destroys every sandbox and removes the runtime's host objects. */
  async purge(): Promise<void> {
    if (!this.started) return;
    await this.started.catch(() => {});
    await this.runtime.purge();
  }
}

/** Running CTs are real LocalRuntime sandboxes: made on start, destroyed on stop or destroy. */
import { LocalRuntime } from "../../server/providers/local/index.js";
import type { LocalRuntimeOptions } from "../../server/providers/local/options.js";
import type { SandboxHandle } from "../../server/providers/provider.js";

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

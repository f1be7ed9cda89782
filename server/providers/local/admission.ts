/**
 * Admission control: a create is refused (RESOURCE_EXHAUSTED, naming the
 * setting) unless the host can honour it next to every sandbox it already
 * runs or is making.
 *
 * - Memory: the sum of the sandboxes' memory limits stays within the total
 *   (default: the host's memory less a reserve for the host itself).
 * - Disk: images are sparse, so each can still grow to its size. A new one is
 *   admitted only if it and the unwritten rest of every other image fit in
 *   the free space of the state directory's file system, less a reserve.
 * - Cores: CPU is time-shared and each sandbox's quota caps it, so the sum
 *   of quotas may exceed the host's cores, up to a total (default 16× the
 *   cores: idle sandboxes are the common case).
 * - Pids: every sandbox may fork up to its own cap, and the sum of the caps
 *   stays within the total (default: kernel.pid_max less a reserve), so no
 *   sandbox's fork bomb can starve a neighbour or the host. The instance
 *   cgroup enforces the same total in the kernel (cgroups.ts limitInstance).
 *   On a host with the old pid_max of 32768 that is 22 sandboxes at 1024
 *   pids each: raise kernel.pid_max or lower SANDBOXD_LOCAL_PIDS_MAX.
 * - Count: at most maxSandboxes.
 */
import { promises as fs } from "node:fs";
import os from "node:os";
import { resourceExhausted } from "../../errors.js";
import type { SandboxSpec } from "../provider.js";
import { readText } from "./host.js";

export interface Totals {
  totalCores: number;
  totalMemoryMiB: number;
  /** Free space kept for the host on the state directory's file system. */
  diskReserveGiB: number;
  /** pids.max of the instance cgroup: every sandbox's processes together. */
  totalPids: number;
}

const GiB = 2 ** 30;

/** Defaults from the host: memory less max(1 GiB, 10 %), 16× the cores, disk reserve max(2 GiB, 5 % of the file system), pid_max less max(4096, 25 %). */
export async function defaultTotals(stateDir: string, over: Partial<Totals> = {}): Promise<Totals> {
  const memMiB = Math.floor(os.totalmem() / 2 ** 20);
  const pidMax = Number((await readText("/proc/sys/kernel/pid_max"))?.trim() ?? 32768);
  const fsGiB = await fs.statfs(stateDir).then((s) => (s.blocks * s.bsize) / GiB, () => 0);
  return {
    totalCores: over.totalCores ?? 16 * os.availableParallelism(),
    totalMemoryMiB: over.totalMemoryMiB ?? memMiB - Math.max(1024, Math.ceil(memMiB / 10)),
    diskReserveGiB: over.diskReserveGiB ?? Math.max(2, Math.ceil(fsGiB / 20)),
    totalPids: over.totalPids ?? pidMax - Math.max(4096, Math.ceil(pidMax / 4)),
  };
}

export interface Admitted {
  spec: SandboxSpec;
  /** Bytes its image has already allocated (undefined: not made yet, counts in full). */
  allocatedBytes?: number;
}

/** Throws RESOURCE_EXHAUSTED when `spec` does not fit beside `live`; synchronous, so callers can check and reserve without a gap. */
export function admit(spec: SandboxSpec, live: Admitted[], totals: Totals, freeBytes: number, pidsPerSandbox: number): void {
  if ((live.length + 1) * pidsPerSandbox > totals.totalPids) {
    throw resourceExhausted(
      `not enough pids: each sandbox may run ${pidsPerSandbox} processes and ${live.length} sandboxes hold ${live.length * pidsPerSandbox} of ${totals.totalPids} (SANDBOXD_LOCAL_TOTAL_PIDS; raise kernel.pid_max or lower SANDBOXD_LOCAL_PIDS_MAX)`,
    );
  }
  const memory = live.reduce((n, s) => n + s.spec.memoryMiB, 0);
  if (memory + spec.memoryMiB > totals.totalMemoryMiB) {
    throw resourceExhausted(
      `not enough memory: ${spec.memoryMiB} MiB asked, ${Math.max(0, totals.totalMemoryMiB - memory)} MiB of ${totals.totalMemoryMiB} MiB left for sandboxes (SANDBOXD_LOCAL_TOTAL_MEMORY_MIB)`,
    );
  }
  const cores = live.reduce((n, s) => n + s.spec.cores, 0);
  if (cores + spec.cores > totals.totalCores) {
    throw resourceExhausted(`not enough CPU: ${spec.cores} cores asked, ${Math.max(0, totals.totalCores - cores)} of ${totals.totalCores} left for sandboxes (SANDBOXD_LOCAL_TOTAL_CORES)`);
  }
  const unwritten = live.reduce((n, s) => n + Math.max(0, s.spec.diskGiB * GiB - (s.allocatedBytes ?? 0)), 0);
  const room = freeBytes - totals.diskReserveGiB * GiB - unwritten;
  if (spec.diskGiB * GiB > room) {
    throw resourceExhausted(
      `not enough disk: ${spec.diskGiB} GiB asked, ${Math.max(0, Math.floor(room / GiB))} GiB free once other sandboxes' disks can fill and ${totals.diskReserveGiB} GiB stay for the host (SANDBOXD_LOCAL_DISK_RESERVE_GIB)`,
    );
  }
}

/** Free bytes for unprivileged use on the file system holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const s = await fs.statfs(dir);
  return s.bavail * s.bsize;
}

/** Bytes a (sparse) image has allocated, or undefined when it does not exist yet. */
export async function allocatedBytes(path: string): Promise<number | undefined> {
  return fs.stat(path).then((s) => s.blocks * 512, () => undefined);
}

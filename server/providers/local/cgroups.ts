/**
 * Per-sandbox cgroups on v1 or v2.
 *
 * `<id>` holds the memory limit (no swap), the CPU quota and pids.max =
 * pidsMax + reserve; `<id>/user` has pids.max = pidsMax and is a CPU group
 * of its own. The sandbox's processes all live in user (sessions move
 * themselves there), so a fork bomb exhausts only the user's pids and, however
 * many processes it runs, competes for the sandbox's CPU quota as one group
 * against sshd and sandboxd's commands: a new session still starts, and
 * sandboxd's kill still runs, at once (see jail.ts for who joins when).
 *   v1: <controller>/<instance>/<id> (sshd lives here); user in the pids and cpu hierarchies.
 *   v2: <root>/<instance>/<id>/{sshd,user}: a v2 cgroup with controllers enabled
 *       for children may hold no processes, hence the separate sshd leaf.
 */
import { chownSync, existsSync, mkdirSync, promises as fs } from "node:fs";
import { ID_PATTERN } from "./names.js";
import { exists, killPid, readText, sleep, writeControl, writeControlSync } from "./host.js";

const CPU_PERIOD_US = 100_000;
const V1_CONTROLLERS = ["memory", "pids", "cpu", "freezer"] as const;

export type CgroupLayout =
  | { version: 1; mounts: Map<string, string> }
  | { version: 2; root: string };

/** Finds where the controllers are mounted: v1 per-controller hierarchies if memory, pids and cpu are there, else a v2 hierarchy that has them. */
export async function detectCgroups(): Promise<CgroupLayout> {
  const mountinfo = (await readText("/proc/self/mountinfo")) ?? "";
  const v1 = new Map<string, string>();
  const v2: string[] = [];
  for (const line of mountinfo.split("\n")) {
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const mountpoint = left.split(" ")[4]!;
    const [fstype, , superOptions = ""] = right.split(" ");
    if (fstype === "cgroup") {
      for (const opt of superOptions.split(",")) if (!v1.has(opt)) v1.set(opt, mountpoint);
    } else if (fstype === "cgroup2") v2.push(mountpoint);
  }
  if (v1.has("memory") && v1.has("pids") && v1.has("cpu")) return { version: 1, mounts: v1 };
  for (const root of v2) {
    const controllers = ((await readText(`${root}/cgroup.controllers`)) ?? "").split(/\s+/);
    if (["memory", "pids", "cpu"].every((c) => controllers.includes(c))) return { version: 2, root };
  }
  throw new Error("no cgroup hierarchy with the memory, pids and cpu controllers");
}

export interface CgroupLimits {
  cores: number;
  memoryMiB: number;
}

export class Cgroups {
  constructor(
    readonly layout: CgroupLayout,
    private readonly instance: string,
    private readonly pidsMax: number,
    private readonly pidsReserve = 64,
  ) {}

  /** The most processes one sandbox can have (its user's cap plus sshd's reserve). */
  get pidsPerSandbox(): number {
    return this.pidsMax + this.pidsReserve;
  }

  /** Instance directories, one per hierarchy (v1: memory, pids, cpu and freezer if present). */
  private instanceDirs(): string[] {
    if (this.layout.version === 2) return [`${this.layout.root}/${this.instance}`];
    const mounts = this.layout.mounts;
    const points = new Set(V1_CONTROLLERS.map((c) => mounts.get(c)).filter((m): m is string => !!m));
    return [...points].map((m) => `${m}/${this.instance}`);
  }

  private v1(controller: string, id: string): string | undefined {
    if (this.layout.version !== 1) return undefined;
    const m = this.layout.mounts.get(controller);
    return m ? `${m}/${this.instance}/${id}` : undefined;
  }

  /** Every directory of a sandbox, children first (the order rmdir needs). */
  private dirs(id: string): string[] {
    if (this.layout.version === 2) {
      const base = `${this.layout.root}/${this.instance}/${id}`;
      return [`${base}/user`, `${base}/sshd`, base];
    }
    return [...this.v1UserDirs(id), ...this.instanceDirs().map((d) => `${d}/${id}`)];
  }

  /** v1: the user directories, one per hierarchy that has one (pids, cpu; one if they are co-mounted). */
  private v1UserDirs(id: string): string[] {
    return [...new Set(["pids", "cpu"].map((c) => `${this.v1(c, id)}/user`))];
  }

  /** cgroup.procs files the jail launcher writes its own pid to before it execs anything. */
  jailProcs(id: string): string[] {
    if (this.layout.version === 2) return [`${this.layout.root}/${this.instance}/${id}/sshd/cgroup.procs`];
    return this.instanceDirs().map((d) => `${d}/${id}/cgroup.procs`);
  }

  /** The user cgroup's procs file in the pids hierarchy (v2: the one user cgroup). */
  userProcs(id: string): string {
    if (this.layout.version === 2) return `${this.layout.root}/${this.instance}/${id}/user/cgroup.procs`;
    return `${this.v1("pids", id)}/user/cgroup.procs`;
  }

  /** Every procs file a process writes its pid to to join the user cgroup (bound writable into the jail). */
  userProcsFiles(id: string): string[] {
    if (this.layout.version === 2) return [this.userProcs(id)];
    return this.v1UserDirs(id).map((d) => `${d}/cgroup.procs`);
  }

  async prepareInstance(): Promise<void> {
    if (this.layout.version === 2) {
      const root = this.layout.root;
      await writeControl(`${root}/cgroup.subtree_control`, "+memory +pids +cpu");
      await fs.mkdir(`${root}/${this.instance}`, { recursive: true });
      await writeControl(`${root}/${this.instance}/cgroup.subtree_control`, "+memory +pids +cpu");
      return;
    }
    for (const d of this.instanceDirs()) await fs.mkdir(d, { recursive: true });
  }

  /**
   * Caps every sandbox of the instance together (memory, pids), so the host's
   * own processes (sandboxd, the host sshd) always keep room, whatever the
   * sandboxes do. v1 relies on memory.use_hierarchy (1 on current kernels).
   */
  async limitInstance(memoryMiB: number, pids: number): Promise<void> {
    const memory = String(memoryMiB * 2 ** 20);
    if (this.layout.version === 2) {
      const dir = `${this.layout.root}/${this.instance}`;
      await writeControl(`${dir}/memory.max`, memory);
      await writeControl(`${dir}/pids.max`, String(pids));
      return;
    }
    const memoryDir = this.layout.mounts.get("memory");
    const pidsDir = this.layout.mounts.get("pids");
    if (memoryDir) await writeControl(`${memoryDir}/${this.instance}/memory.limit_in_bytes`, memory);
    if (pidsDir) await writeControl(`${pidsDir}/${this.instance}/pids.max`, String(pids));
  }

  /**
   * Makes the sandbox's cgroups. Synchronously, on purpose: a dozen tiny
   * kernel calls (no disk) that the jail's launcher waits for; as separate
   * awaits they would queue behind every other step's process spawns.
   */
  async create(id: string, limits: CgroupLimits, uid: number): Promise<void> {
    const memory = String(limits.memoryMiB * 1024 * 1024);
    const quota = String(limits.cores * CPU_PERIOD_US);
    const pids = String(this.pidsMax + this.pidsReserve);
    if (this.layout.version === 2) {
      const base = `${this.layout.root}/${this.instance}/${id}`;
      mkdirSync(base);
      writeControlSync(`${base}/memory.max`, memory);
      if (existsSync(`${base}/memory.swap.max`)) writeControlSync(`${base}/memory.swap.max`, "0");
      writeControlSync(`${base}/cpu.max`, `${quota} ${CPU_PERIOD_US}`);
      writeControlSync(`${base}/pids.max`, pids);
      writeControlSync(`${base}/cgroup.subtree_control`, "+pids +cpu");
      mkdirSync(`${base}/sshd`);
      mkdirSync(`${base}/user`);
      writeControlSync(`${base}/user/pids.max`, String(this.pidsMax));
      // Moving sshd/ -> user/ needs write access to both procs files and to their
      // common ancestor's; <id> itself cannot take processes (it has controllers on).
      chownSync(`${base}/user/cgroup.procs`, uid, -1);
      chownSync(`${base}/cgroup.procs`, uid, -1);
      return;
    }
    for (const d of this.instanceDirs()) mkdirSync(`${d}/${id}`);
    const mem = this.v1("memory", id)!;
    writeControlSync(`${mem}/memory.limit_in_bytes`, memory);
    // memsw = memory: no swap (the file exists only with swap accounting).
    if (existsSync(`${mem}/memory.memsw.limit_in_bytes`)) writeControlSync(`${mem}/memory.memsw.limit_in_bytes`, memory);
    const cpu = this.v1("cpu", id)!;
    writeControlSync(`${cpu}/cpu.cfs_period_us`, String(CPU_PERIOD_US));
    writeControlSync(`${cpu}/cpu.cfs_quota_us`, quota);
    const pidsDir = this.v1("pids", id)!;
    writeControlSync(`${pidsDir}/pids.max`, pids);
    for (const dir of this.v1UserDirs(id)) {
      mkdirSync(dir);
      // On v1 a non-root process may move itself into a cgroup whose procs file it can write.
      chownSync(`${dir}/cgroup.procs`, uid, -1);
    }
    writeControlSync(`${pidsDir}/user/pids.max`, String(this.pidsMax));
  }

  /** Pids in any of the sandbox's cgroups. */
  async pids(id: string): Promise<number[]> {
    const all = new Set<number>();
    for (const d of this.dirs(id)) {
      const text = (await readText(`${d}/cgroup.procs`)) ?? "";
      for (const p of text.split("\n")) if (p) all.add(Number(p));
    }
    return [...all];
  }

  /** Whether a process is in this sandbox's cgroup (guards against a recycled pid). */
  async contains(id: string, pid: number): Promise<boolean> {
    const text = (await readText(`/proc/${pid}/cgroup`)) ?? "";
    const needle = `/${this.instance}/${id}`;
    return text.split("\n").some((l) => l.endsWith(needle) || l.includes(`${needle}/`));
  }

  /**
   * Kills every process of the sandbox: v2 cgroup.kill, v1 freeze first so
   * nothing forks while being killed; then SIGKILL whatever is left until the
   * cgroups are empty (bounded).
   */
  async kill(id: string): Promise<void> {
    let freezer: string | undefined;
    if (this.layout.version === 2) {
      const kill = `${this.layout.root}/${this.instance}/${id}/cgroup.kill`;
      if (await exists(kill)) await writeControl(kill, "1").catch(() => {});
    } else {
      const dir = this.v1("freezer", id);
      if (dir && (await exists(`${dir}/freezer.state`))) {
        freezer = await writeControl(`${dir}/freezer.state`, "FROZEN").then(() => dir, () => undefined);
      }
    }
    for (let round = 0; round < 500; round++) {
      const pids = await this.pids(id);
      if (pids.length === 0) return;
      for (const pid of pids) killPid(pid);
      if (freezer) {
        await writeControl(`${freezer}/freezer.state`, "THAWED").catch(() => {});
        freezer = undefined;
      }
      await sleep(round < 20 ? 5 : 20);
    }
    throw new Error(`processes of ${id} survive SIGKILL: ${(await this.pids(id)).join(" ")}`);
  }

  /** Removes the sandbox's cgroup directories (children first); absent ones are fine. */
  async remove(id: string): Promise<void> {
    for (const d of this.dirs(id)) {
      for (let attempt = 0; ; attempt++) {
        try {
          await fs.rmdir(d);
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === "ENOENT") break;
          // EBUSY while the last killed tasks are still being released.
          if (code !== "EBUSY" || attempt >= 100) throw e;
          await sleep(10);
        }
      }
    }
  }

  /** Sandbox ids that have a cgroup directory in any hierarchy. */
  async listIds(): Promise<string[]> {
    const ids = new Set<string>();
    for (const d of this.instanceDirs()) {
      for (const name of await fs.readdir(d).catch(() => [] as string[])) if (ID_PATTERN.test(name)) ids.add(name);
    }
    return [...ids];
  }

  async removeInstance(): Promise<void> {
    for (const d of this.instanceDirs()) await fs.rmdir(d).catch(() => {});
  }
}

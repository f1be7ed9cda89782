/**
 * Test-only: finds what a runtime instance left on the host, straight from
 * the kernel and the file system (not from the runtime's own bookkeeping).
 */
import { promises as fs } from "node:fs";
import { loopDevices } from "./disk.js";
import { exists, readText, run } from "./host.js";
import type { LocalRuntime } from "./runtime.js";

export interface Leftovers {
  netns: string[];
  veths: string[];
  cgroups: string[];
  nftElements: string[];
  loops: string[];
  /** Host mounts of anything under the state dir (disks are only ever mounted inside jails). */
  mounts: string[];
  stateDirs: string[];
  processes: string[];
}

/** Everything of the instance's sandboxes other than those in `keep`. */
export async function leftovers(rt: LocalRuntime, keep: string[] = []): Promise<Leftovers> {
  const kept = (s: string) => keep.some((id) => s.includes(id));
  const netns = (await fs.readdir("/run/netns").catch(() => [] as string[])).filter((n) => rt.names.idOfNetns(n) && !kept(n));
  const veths = (await fs.readdir("/sys/class/net")).filter((n) => rt.names.idOfVeth(n) && !keep.some((id) => n === rt.names.veth(id)));
  const cgroups = (await rt.cgroups.listIds()).filter((id) => !kept(id));
  const keptAddresses = (await Promise.all(keep.map((id) => rt.get(id)))).map((h) => h?.address);
  const nftElements = (await rt.firewall.members()).filter((a) => !keptAddresses.includes(a));
  const loops = (await loopDevices()).filter((l) => l.backingFile.startsWith(`${rt.stateDir}/`) && !kept(l.backingFile)).map((l) => `${l.device} ${l.backingFile}`);
  const mounts = ((await readText("/proc/self/mountinfo")) ?? "").split("\n").filter((l) => l.includes(`${rt.stateDir}/`) && !kept(l));
  const stateDirs = (await fs.readdir(`${rt.stateDir}/sandboxes`).catch(() => [] as string[])).filter((n) => !kept(n));
  const processes: string[] = [];
  for (const pid of (await fs.readdir("/proc")).filter((n) => /^\d+$/.test(n))) {
    if (Number(pid) === process.pid) continue;
    const cgroup = (await readText(`/proc/${pid}/cgroup`)) ?? "";
    const cmdline = ((await readText(`/proc/${pid}/cmdline`)) ?? "").replace(/\0/g, " ");
    const ours = cgroup.includes(`/${rt.instance}/`) || cmdline.includes(`${rt.stateDir}/`);
    if (ours && !kept(cgroup) && !kept(cmdline)) processes.push(`${pid} ${cmdline.slice(0, 120)}`);
  }
  return { netns, veths, cgroups, nftElements, loops, mounts, stateDirs, processes };
}

export const NOTHING: Leftovers = { netns: [], veths: [], cgroups: [], nftElements: [], loops: [], mounts: [], stateDirs: [], processes: [] };

/** Instance-wide objects still present (after purge there should be none). */
export async function instanceLeftovers(rt: LocalRuntime): Promise<string[]> {
  const found: string[] = [];
  if (await exists(`/sys/class/net/${rt.names.bridge}`)) found.push(`bridge ${rt.names.bridge}`);
  if (await exists(rt.stateDir)) found.push(`state dir ${rt.stateDir}`);
  const tables = await run("nft", ["list", "tables"]);
  if (tables.includes(` ${rt.names.table}\n`) || tables.endsWith(` ${rt.names.table}`)) found.push(`nft table ${rt.names.table}`);
  const layout = rt.cgroups.layout;
  const roots = layout.version === 2 ? [layout.root] : [...new Set(layout.mounts.values())];
  for (const r of roots) if (await exists(`${r}/${rt.instance}`)) found.push(`cgroup ${r}/${rt.instance}`);
  // Host-wide uid range claims (uids.ts) of this instance's sandboxes.
  for (const name of await fs.readdir("/run/sandboxd/uid-ranges").catch(() => [] as string[])) {
    const claim = (await readText(`/run/sandboxd/uid-ranges/${name}`)) ?? "";
    if (claim.includes(JSON.stringify(rt.stateDir))) found.push(`uid range claim ${name}`);
  }
  return found;
}

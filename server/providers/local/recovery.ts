/**
 * Start-up reconciliation with whatever an earlier process of the same
 * instance left behind (it may have been killed at any point).
 *
 * The rule: a sandbox is ADOPTED when its state file is complete, its jail
 * init (recorded pid) is alive, is pid 1 of a pid namespace and sits in that
 * sandbox's cgroup, its network namespace exists, its address is free in the
 * pool, and its sshd answers on <address>:22 with an SSH banner. It is then
 * usable at once with the same address and pinned host key (the client key is
 * kept in the state dir).
 * Everything else named for this instance (state dirs, network namespaces,
 * cgroups, veths, loop devices of images under the state dir, and processes
 * in those cgroups or namespaces) is REMOVED. Other instances' objects have
 * other names and are never looked at.
 */
import { promises as fs } from "node:fs";
import type { Cgroups } from "./cgroups.js";
import { loopDevices } from "./disk.js";
import { allPids, killPid, pidAlive, sleep } from "./host.js";
import { findJailInit, sshdAnswers } from "./sshd-ready.js";
import { ID_PATTERN } from "./names.js";
import type { Network } from "./network.js";
import type { SandboxRecord, StateStore } from "./state.js";

export interface ReconcileDeps {
  store: StateStore;
  cgroups: Cgroups;
  network: Network;
  /** Claims the record's address in the pool; false if it cannot be used. */
  claimAddress(address: string): boolean;
  /** Removes everything of a sandbox (idempotent). */
  teardown(id: string, record: SandboxRecord | undefined): Promise<void>;
  /** When false nothing is adopted (used to purge an instance). */
  adopt: boolean;
}

export interface ReconcileResult {
  adopted: SandboxRecord[];
  removed: string[];
}

async function candidateIds(deps: ReconcileDeps): Promise<Set<string>> {
  const ids = new Set<string>([
    ...(await deps.store.listIds()),
    ...(await deps.network.listNetnsIds()),
    ...(await deps.network.listVethIds()),
    ...(await deps.cgroups.listIds()),
  ]);
  for (const loop of await loopDevices()) {
    if (!loop.backingFile.startsWith(`${deps.store.root}/`)) continue;
    const id = loop.backingFile.slice(deps.store.root.length + 1).split("/")[0]!;
    if (ID_PATTERN.test(id)) ids.add(id);
  }
  return ids;
}

async function adoptable(deps: ReconcileDeps, id: string, rec: SandboxRecord | undefined): Promise<boolean> {
  if (!deps.adopt || !rec?.complete || !rec.jailPid) return false;
  const pid = rec.jailPid;
  if (!pidAlive(pid) || !(await deps.cgroups.contains(id, pid))) return false;
  if ((await findJailInit([pid])) !== pid) return false;
  if ((await deps.network.netnsInode(id)) === undefined) return false;
  return sshdAnswers(rec.address, 2000);
}

/**
 * Kills processes that are inside the sandbox's network namespace but in none
 * of its cgroups (a launcher killed between spawn and joining its cgroups).
 */
async function killNetnsStragglers(network: Network, id: string): Promise<void> {
  const ino = await network.netnsInode(id);
  if (ino === undefined) return;
  for (let round = 0; round < 50; round++) {
    const inside: number[] = [];
    for (const pid of await allPids()) {
      const link = await fs.readlink(`/proc/${pid}/ns/net`).catch(() => "");
      if (link === `net:[${ino}]`) inside.push(pid);
    }
    if (inside.length === 0) return;
    inside.forEach((p) => killPid(p));
    await sleep(10);
  }
}

export async function reconcile(deps: ReconcileDeps): Promise<ReconcileResult> {
  const ids = await candidateIds(deps);
  const result: ReconcileResult = { adopted: [], removed: [] };
  await Promise.all(
    [...ids].map(async (id) => {
      const rec = await deps.store.read(id);
      if (rec && (await adoptable(deps, id, rec)) && deps.claimAddress(rec.address)) {
        result.adopted.push(rec);
        return;
      }
      await killNetnsStragglers(deps.network, id);
      await deps.teardown(id, rec);
      result.removed.push(id);
    }),
  );
  return result;
}

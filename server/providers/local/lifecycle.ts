/**
 * The two halves of a sandbox's life on the host: building one (network,
 * disk, cgroups, ssh files in parallel, then the jail until sshd answers) and
 * tearing one down from its id alone (used by destroy, failed creates and
 * start-up recovery).
 */
import type { ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import type { SandboxSpec } from "../provider.js";
import type { Cgroups } from "./cgroups.js";
import { createImage, loopDevices, releaseLoops } from "./disk.js";
import type { Firewall } from "./firewall.js";
import { findJailInit, mapUserns, spawnJail, waitForSshd, writeSshFiles } from "./jail.js";
import type { JailRoot } from "./jail-root.js";
import { generateEd25519, type KeyPair } from "./keys.js";
import type { Network } from "./network.js";
import type { SandboxRecord, StateStore } from "./state.js";
import { allocateUidRange, releaseUidRange, SANDBOX_UID } from "./uids.js";

/** The runtime's host-side parts a sandbox is made of. */
export interface Parts {
  stateDir: string;
  store: StateStore;
  network: Network;
  cgroups: Cgroups;
  firewall: Firewall;
  /** What every jail shares: /etc, seccomp filter, system directory arguments (jail-root.ts). */
  jail: JailRoot & { systemDirs: string[] };
  clientPublicKey: string;
  /** Shared host key of every sandbox; a fresh one per sandbox when absent. */
  hostKey?: KeyPair;
}

export interface Build {
  id: string;
  address: string;
  spec: SandboxSpec;
  /** Filled in as the build goes; written with complete=false first, complete=true last. */
  record: SandboxRecord;
  signal: AbortSignal;
  /** Once the namespace exists: writes its guard table and its host firewall elements (firewall.attach). */
  attachFirewall(): Promise<void>;
  /** The jail's launcher, once spawned (destroy kills it if it is not in its cgroups yet). */
  child?: ChildProcess;
}

export async function buildSandbox(p: Parts, b: Build): Promise<void> {
  const { id, address, record, signal } = b;
  const dir = p.store.dir(id);
  // Searchable (not readable) by others: bwrap runs as the sandbox's root uid and binds from here.
  await fs.mkdir(`${dir}/mnt`, { recursive: true, mode: 0o711 });
  const hostKey = p.hostKey ?? generateEd25519();
  record.hostKey = hostKey.publicKey;
  // Claimed before the record is written: a claim with no record is only taken over after a minute.
  record.uidBase ??= await allocateUidRange({ stateDir: p.stateDir, id });
  const rootUid = record.uidBase;
  await p.store.write(record);
  signal.throwIfAborted();
  // allSettled, not all: a failed step must not leave others running into the teardown.
  const steps = await Promise.allSettled([
    // The namespace's guard is in place before anything runs in it.
    p.network.createSandbox(id, address, () => b.attachFirewall()),
    createImage(`${dir}/disk.img`, b.spec.diskGiB, { rootUid, user: rootUid + SANDBOX_UID }),
    p.cgroups.create(id, b.spec, rootUid + SANDBOX_UID),
    writeSshFiles(`${dir}/ssh`, { address, hostPrivateKey: hostKey.privateKey, authorizedKey: p.clientPublicKey, joinFiles: p.cgroups.userProcsFiles(id).length, rootUid }),
  ]);
  const failed = steps.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) throw failed.reason;
  signal.throwIfAborted();
  b.child = await spawnJail({
    id,
    netnsPath: p.network.netnsPath(id),
    image: `${dir}/disk.img`,
    mnt: `${dir}/mnt`,
    sshDir: `${dir}/ssh`,
    logPath: `${dir}/sshd.log`,
    cgroupProcs: p.cgroups.jailProcs(id),
    userProcs: p.cgroups.userProcsFiles(id),
    uidBase: rootUid,
    etc: p.jail.etc,
    seccomp: p.jail.seccomp,
    systemDirs: p.jail.systemDirs,
  });
  await mapUserns(b.child, rootUid, `${dir}/sshd.log`, signal);
  await waitForSshd(address, b.child, `${dir}/sshd.log`, signal);
  record.jailPid = await findJailInit(await p.cgroups.pids(id));
  if (!record.jailPid) throw new Error("sshd answers but the jail's init is not in its cgroup");
  record.loopDevice = (await loopDevices()).find((l) => l.backingFile === `${dir}/disk.img`)?.device;
  signal.throwIfAborted();
}

/**
 * Removes every trace of a sandbox; idempotent. Order: processes (which frees
 * the jail's mount namespace, hence the disk mount), network, firewall
 * elements, loop device, cgroups, files.
 */
export async function teardownSandbox(p: Parts, id: string, address: string | undefined): Promise<void> {
  const uidBase = (await p.store.read(id))?.uidBase;
  await p.cgroups.kill(id);
  await p.network.deleteSandbox(id);
  // No table (removed by hand): no element to remove.
  if (address) await p.firewall.forget(address);
  await releaseLoops(`${p.store.dir(id)}/`);
  try {
    await p.cgroups.remove(id);
  } catch {
    await p.cgroups.kill(id);
    await p.cgroups.remove(id);
  }
  if (uidBase !== undefined) await releaseUidRange(uidBase, { stateDir: p.stateDir, id });
  await p.store.remove(id);
}

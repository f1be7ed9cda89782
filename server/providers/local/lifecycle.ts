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
import { findJailInit, spawnJail, waitForSshd, writeSshFiles } from "./jail.js";
import { generateEd25519, type KeyPair } from "./keys.js";
import type { Network } from "./network.js";
import type { SandboxRecord, StateStore } from "./state.js";

/** The runtime's host-side parts a sandbox is made of. */
export interface Parts {
  stateDir: string;
  templateDir: string;
  store: StateStore;
  network: Network;
  cgroups: Cgroups;
  firewall: Firewall;
  uid: number;
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
  /** Applies the current internet setting to the firewall. */
  syncInternet(): Promise<void>;
  /** The jail's launcher, once spawned (destroy kills it if it is not in its cgroups yet). */
  child?: ChildProcess;
}

export async function buildSandbox(p: Parts, b: Build): Promise<void> {
  const { id, address, record, signal } = b;
  const dir = p.store.dir(id);
  await fs.mkdir(`${dir}/mnt`, { recursive: true, mode: 0o700 });
  const hostKey = p.hostKey ?? generateEd25519();
  record.hostKey = hostKey.publicKey;
  await p.store.write(record);
  signal.throwIfAborted();
  // allSettled, not all: a failed step must not leave others running into the teardown.
  const steps = await Promise.allSettled([
    p.network.createSandbox(id, address),
    createImage(`${dir}/disk.img`, b.spec.diskGiB, p.templateDir),
    p.cgroups.create(id, b.spec, p.uid),
    writeSshFiles(`${dir}/ssh`, { address, hostPrivateKey: hostKey.privateKey, authorizedKey: p.clientPublicKey, joinFiles: p.cgroups.userProcsFiles(id).length }),
    b.spec.internet ? b.syncInternet() : undefined,
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
    hide: [p.stateDir],
  });
  await waitForSshd(address, b.child, `${dir}/sshd.log`, signal);
  record.jailPid = await findJailInit(await p.cgroups.pids(id));
  if (!record.jailPid) throw new Error("sshd answers but the jail's init is not in its cgroup");
  record.loopDevice = (await loopDevices()).find((l) => l.backingFile === `${dir}/disk.img`)?.device;
  signal.throwIfAborted();
}

/**
 * Removes every trace of a sandbox; idempotent. Order: processes (which frees
 * the jail's mount namespace, hence the disk mount), network, firewall
 * element, loop device, cgroups, files.
 */
export async function teardownSandbox(p: Parts, id: string, address: string | undefined): Promise<void> {
  await p.cgroups.kill(id);
  await p.network.deleteSandbox(id);
  // No table (removed by hand), no element to remove.
  if (address) await p.firewall.setInternet(address, false).catch(async (e) => { if (await p.firewall.exists()) throw e; });
  await releaseLoops(`${p.store.dir(id)}/`);
  try {
    await p.cgroups.remove(id);
  } catch {
    await p.cgroups.kill(id);
    await p.cgroups.remove(id);
  }
  await p.store.remove(id);
}

/**
 * The two halves of a sandbox's life on the host: building one (cgroups,
 * then the jail's launcher alongside network, disk and ssh files, then the
 * jail itself until sshd listens) and
 * tearing one down from its id alone (used by destroy, failed creates and
 * start-up recovery).
 */
import type { ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import type { SandboxSpec } from "../provider.js";
import type { Cgroups } from "./cgroups.js";
import { createImage, loopDevices, releaseLoops } from "./disk.js";
import type { Firewall } from "./firewall.js";
import { mapUserns, spawnJail } from "./jail.js";
import { writeSshFiles } from "./sshd-files.js";
import { findJailInit, waitForSshd } from "./sshd-ready.js";
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
  jail: JailRoot & { systemDirs: string[]; caps: string[] };
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
  const jailSpec = {
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
    caps: p.jail.caps,
  };
  // The launcher starts first, once its cgroups exist, and joins them while the rest is made (see jail.ts).
  await p.cgroups.create(id, b.spec, rootUid + SANDBOX_UID);
  const launcher = spawnJail(jailSpec);
  b.child = launcher.child;
  // allSettled, not all: a failed step must not leave others running into the teardown.
  const steps = await Promise.allSettled([
    // The namespace's guard is in place before anything runs in it.
    p.network.createSandbox(id, address, () => b.attachFirewall()),
    createImage(jailSpec.image, b.spec.diskGiB, { rootUid, user: rootUid + SANDBOX_UID }).then(() => launcher.release("disk")),
    writeSshFiles(jailSpec.sshDir, { address, hostPrivateKey: hostKey.privateKey, authorizedKey: p.clientPublicKey, joinFiles: jailSpec.userProcs.length, rootUid }),
  ]);
  const failed = steps.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed || signal.aborted) {
    launcher.abandon();
    throw failed ? failed.reason : signal.reason;
  }
  await launcher.release("net");
  const init = await mapUserns(launcher.child, rootUid, jailSpec.logPath, signal);
  await waitForSshd(address, jailSpec.netnsPath, launcher.child, jailSpec.logPath, signal);
  const [initFound, loops] = await Promise.all([findJailInit([init]), loopDevices()]);
  if (initFound !== init) throw new Error(`sshd listens but bwrap's child ${init} is not the jail's init`);
  record.jailPid = init;
  record.loopDevice = loops.find((l) => l.backingFile === `${dir}/disk.img`)?.device;
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

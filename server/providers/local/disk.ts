/**
 * A sandbox's writable space: a sparse ext4 image of the requested size,
 * pre-filled by mkfs from a template (home/sandbox owned by the sandbox user,
 * tmp 1777, both as host uids of the sandbox's own range, see uids.ts). The jail launcher loop-mounts it in the jail's own mount
 * namespace only, so no other jail or host namespace ever holds the mount and
 * it (and its loop device, autoclear) goes away with the jail's last process.
 */
import { chmodSync, chownSync, closeSync, ftruncateSync, mkdirSync, openSync, promises as fs } from "node:fs";
import { run, sleep } from "./host.js";

/**
 * Sparse file + mkfs.ext4 with lazy init and no discard (~10 ms whatever the
 * size), filled from a template made for this image's owners: the root of the
 * sandbox's range (`rootUid`, root dir and tmp) and `user` (home/sandbox).
 */
export async function createImage(path: string, sizeGiB: number, owners: { rootUid: number; user: number }): Promise<void> {
  // Left beside the image (three directories), removed with the sandbox's dir. Synchronously:
  // a dozen metadata calls that mkfs waits for, which as awaits would queue behind other steps' spawns.
  const template = `${path}.template`;
  mkdirSync(`${template}/home/sandbox`, { recursive: true, mode: 0o700 });
  mkdirSync(`${template}/tmp`);
  chmodSync(template, 0o755);
  chmodSync(`${template}/home`, 0o755);
  chmodSync(`${template}/home/sandbox`, 0o755);
  chmodSync(`${template}/tmp`, 0o1777);
  chownSync(`${template}/home/sandbox`, owners.user, owners.user);
  for (const d of ["", "/home", "/tmp"]) chownSync(`${template}${d}`, owners.rootUid, owners.rootUid);
  const fd = openSync(path, "w", 0o600);
  try {
    ftruncateSync(fd, sizeGiB * 1024 ** 3);
  } finally {
    closeSync(fd);
  }
  await run("mkfs.ext4", [
    "-q", "-F", "-m", "0",
    "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
    "-d", `${path}.template`,
    path,
  ]);
}

export interface LoopDevice {
  device: string;
  backingFile: string;
}

/** Attached loop devices and their backing files, from sysfs (no process spawned). */
export async function loopDevices(): Promise<LoopDevice[]> {
  const names = (await fs.readdir("/sys/block").catch(() => [] as string[])).filter((n) => n.startsWith("loop"));
  const files = await Promise.all(names.map((n) => fs.readFile(`/sys/block/${n}/loop/backing_file`, "utf8").catch(() => undefined)));
  return names.flatMap((n, i) => (files[i] ? [{ device: `/dev/${n}`, backingFile: files[i]!.trim().replace(/ \(deleted\)$/, "") }] : []));
}

/**
 * Waits for the loop devices backing files under `prefix` to be released
 * (autoclear runs once the jail's mount namespace is gone, a little after its
 * last process), then detaches any that remain.
 */
export async function releaseLoops(prefix: string, waitMs = 3000): Promise<void> {
  const deadline = Date.now() + waitMs;
  let loops = (await loopDevices()).filter((l) => l.backingFile.startsWith(prefix));
  while (loops.length > 0 && Date.now() < deadline) {
    await sleep(10);
    loops = (await loopDevices()).filter((l) => l.backingFile.startsWith(prefix));
  }
  for (const l of loops) await run("losetup", ["-d", l.device]);
}

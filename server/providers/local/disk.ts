/**
 * A sandbox's writable space: a sparse ext4 image of the requested size,
 * pre-filled by mkfs from a template (home/sandbox owned by the sandbox user,
 * tmp 1777, both as host uids of the sandbox's own range, see uids.ts). The jail launcher loop-mounts it in the jail's own mount
 * namespace only, so no other jail or host namespace ever holds the mount and
 * it (and its loop device, autoclear) goes away with the jail's last process.
 */
import { promises as fs } from "node:fs";
import { run, sleep } from "./host.js";

export async function ensureTemplate(dir: string, uid: number, gid: number): Promise<void> {
  await fs.mkdir(`${dir}/home/sandbox`, { recursive: true });
  await fs.mkdir(`${dir}/tmp`, { recursive: true });
  await fs.chmod(dir, 0o755);
  await fs.chmod(`${dir}/home`, 0o755);
  await fs.chown(`${dir}/home/sandbox`, uid, gid);
  await fs.chmod(`${dir}/home/sandbox`, 0o755);
  await fs.chmod(`${dir}/tmp`, 0o1777);
}

/**
 * Sparse file + mkfs.ext4 with lazy init and no discard (~10 ms whatever the
 * size), filled from a template made for this image's owners: the root of the
 * sandbox's range (`rootUid`, root dir and tmp) and `user` (home/sandbox).
 */
export async function createImage(path: string, sizeGiB: number, owners: { rootUid: number; user: number }): Promise<void> {
  // Left beside the image (three directories), removed with the sandbox's dir.
  const template = `${path}.template`;
  await fs.mkdir(template, { mode: 0o700 });
  await ensureTemplate(template, owners.user, owners.user);
  await fs.chown(template, owners.rootUid, owners.rootUid);
  await fs.chown(`${template}/home`, owners.rootUid, owners.rootUid);
  await fs.chown(`${template}/tmp`, owners.rootUid, owners.rootUid);
  await makeImage(path, sizeGiB, template);
}

async function makeImage(path: string, sizeGiB: number, template: string): Promise<void> {
  const fh = await fs.open(path, "w", 0o600);
  try {
    await fh.truncate(sizeGiB * 1024 ** 3);
  } finally {
    await fh.close();
  }
  await run("mkfs.ext4", [
    "-q", "-F", "-m", "0",
    "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
    "-d", template,
    path,
  ]);
}

export interface LoopDevice {
  device: string;
  backingFile: string;
}

/** Attached loop devices and their backing files, from sysfs (no process spawned). */
export async function loopDevices(): Promise<LoopDevice[]> {
  const out: LoopDevice[] = [];
  for (const name of await fs.readdir("/sys/block").catch(() => [] as string[])) {
    if (!name.startsWith("loop")) continue;
    const file = await fs.readFile(`/sys/block/${name}/loop/backing_file`, "utf8").catch(() => undefined);
    if (file) out.push({ device: `/dev/${name}`, backingFile: file.trim().replace(/ \(deleted\)$/, "") });
  }
  return out;
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

/**
 * Remove: a file, a symlink (the link itself, never its target), an empty
 * directory, or with `recursive` a whole tree. The walk is depth first and
 * holds one READDIR batch per level and at most one directory handle at a
 * time: it reads a batch, closes the handle, removes what it read, and reads
 * again until the directory is empty. Entries come with lstat attributes, so
 * a symlink to a directory is unlinked, never entered.
 */
import { cancelled, failedPrecondition } from "../../errors.js";
import type { SessionRegistry } from "../session-registry.js";
import type { SftpSession } from "../sftp-session.js";
import { isGenericFailure, kindOf, lstat, refineFailure, validatePath, withSession } from "./common.js";
import { openDir, readBatch } from "./list-dir.js";

export async function removePath(registry: SessionRegistry, sandboxId: string, o: { path: string; recursive?: boolean; signal?: AbortSignal }): Promise<void> {
  const path = validatePath(o.path);
  await withSession(registry, sandboxId, o.signal, async (s) => {
    try {
      const st = await lstat(s, path);
      if (kindOf(st.mode) !== "directory") return await unlink(s, path);
      if (o.recursive) return await removeTree(s, path, o.signal);
      try {
        await rmdir(s, path);
      } catch (err) {
        if (isGenericFailure(err) && (await firstBatch(s, path))) throw failedPrecondition(`${JSON.stringify(path)} is a directory that is not empty (recursive not set)`);
        throw err;
      }
    } catch (err) {
      throw await refineFailure(s, err, "remove", path);
    }
  });
}

function unlink(s: SftpSession, path: string): Promise<void> {
  return s.unlink(path);
}

function rmdir(s: SftpSession, path: string): Promise<void> {
  return s.call<void>("rmdir", path, (cb) => s.sftp.rmdir(path, cb));
}

async function firstBatch(s: SftpSession, dir: string) {
  const handle = await openDir(s, dir);
  try {
    const list = await readBatch(s, handle, dir);
    return list && list.length > 0 ? list : undefined;
  } finally {
    await s.close(handle, dir).catch(() => {});
  }
}

async function removeTree(s: SftpSession, dir: string, signal?: AbortSignal): Promise<void> {
  for (let list = await firstBatch(s, dir); list; list = await firstBatch(s, dir)) {
    for (const e of list) {
      if (signal?.aborted) throw cancelled(`remove ${JSON.stringify(dir)}: cancelled`);
      const path = dir === "/" ? `/${e.filename}` : `${dir}/${e.filename}`;
      if (kindOf(e.attrs.mode) === "directory") await removeTree(s, path, signal);
      else await unlink(s, path);
    }
  }
  await rmdir(s, dir);
}

/** Stat: what a path is, with or without following a final symlink. */
import { posix } from "node:path";
import type { Stats } from "ssh2";
import type { SessionRegistry } from "../session-registry.js";
import { entryOf, lstat, readlink, validatePath, withSession, type FileEntry } from "./common.js";

export async function statPath(registry: SessionRegistry, sandboxId: string, o: { path: string; followSymlinks?: boolean; signal?: AbortSignal }): Promise<FileEntry> {
  const path = validatePath(o.path);
  return withSession(registry, sandboxId, o.signal, async (s) => {
    const st = o.followSymlinks ? await s.call<Stats>("stat", path, (cb) => s.sftp.stat(path, cb)) : await lstat(s, path);
    const entry = entryOf(posix.basename(path), path, st);
    if (entry.type === "symlink") entry.symlinkTarget = await readlink(s, path);
    return entry;
  });
}

/**
 * Shared parts of the file RPCs (Stat, ListDir, MakeDir, Remove, Move): over
 * the sandbox's shared SFTP session, as the sandbox user inside the sandbox,
 * so paths and symlinks resolve in the sandbox's own view of its file system.
 */
import { posix } from "node:path";
import type { Attributes, Stats } from "ssh2";
import { failedPrecondition, isSandboxError, resourceExhausted } from "../../errors.js";
import type { SessionRegistry } from "../session-registry.js";
import { SFTP_STATUS, sftpCode } from "../sftp-errors.js";
import { sftpPool } from "../sftp-pool.js";
import { type SftpSession, validatePath } from "../sftp-session.js";

export { validatePath };

export type FileKind = "file" | "directory" | "symlink" | "other";

export interface FileEntry {
  name: string;
  path: string;
  type: FileKind;
  size: number;
  /** Permission bits only. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  symlinkTarget: string;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

export function kindOf(mode: number): FileKind {
  switch (mode & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "symlink";
    default: return "other";
  }
}

export function entryOf(name: string, path: string, st: Attributes, symlinkTarget = ""): FileEntry {
  return {
    name, path, type: kindOf(st.mode), size: Number(st.size ?? 0), mode: st.mode & 0o7777,
    uid: st.uid ?? 0, gid: st.gid ?? 0, mtime: st.mtime ?? 0, symlinkTarget,
  };
}

/** Runs `fn` on the sandbox's shared SFTP session (sftp-pool.ts). */
export function withSession<T>(registry: SessionRegistry, sandboxId: string, signal: AbortSignal | undefined, fn: (s: SftpSession) => Promise<T>): Promise<T> {
  return sftpPool(registry).use(sandboxId, signal, fn);
}

export function lstat(s: SftpSession, path: string): Promise<Stats> {
  return s.call<Stats>("lstat", path, (cb) => s.sftp.lstat(path, cb));
}

export async function lstatOrUndefined(s: SftpSession, path: string): Promise<Stats | undefined> {
  try {
    return await lstat(s, path);
  } catch (err) {
    if (isSandboxError(err, "not_found")) return undefined;
    throw err;
  }
}

export function readlink(s: SftpSession, path: string): Promise<string> {
  return s.call<string>("readlink", path, (cb) => s.sftp.readlink(path, cb));
}

export function isGenericFailure(err: unknown): boolean {
  return isSandboxError(err, "internal") && sftpCode(err.cause) === SFTP_STATUS.FAILURE;
}

const ST_RDONLY = 1;

/**
 * sftp-server reports ENOSPC, EDQUOT and EROFS as a generic FAILURE: asks the
 * file system of the nearest existing ancestor of `path` what it is.
 */
export async function refineFailure(s: SftpSession, err: unknown, op: string, path: string): Promise<unknown> {
  if (!isGenericFailure(err)) return err;
  for (let at = posix.dirname(path); ; at = posix.dirname(at)) {
    try {
      const vfs = await s.statvfs(at);
      if (vfs.f_flag & ST_RDONLY) return failedPrecondition(`${op} ${JSON.stringify(path)}: ${JSON.stringify(at)} is on a read-only file system`);
      if (vfs.f_bavail * vfs.f_frsize < 64 * 1024 || vfs.f_favail === 0) {
        return resourceExhausted(`${op} ${JSON.stringify(path)}: no space or inodes left on the sandbox's disk`);
      }
      return err;
    } catch (e) {
      if (!isSandboxError(e, "not_found") || at === posix.dirname(at)) return err;
    }
  }
}

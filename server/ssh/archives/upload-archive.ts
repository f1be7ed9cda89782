/**
 * UploadArchive: a tar stream (optionally gzip, decompressed here) unpacked by
 * `tar` in the sandbox, as the sandbox user, into a fresh hidden directory
 * beside the target; only a complete, valid archive is renamed into place.
 * Every header is checked here before its bytes go on (tar-check.ts), so a
 * refused entry never reaches the sandbox, and a refused, cut-off or
 * cancelled upload removes the staging directory: nothing is left behind.
 *
 * With `replace`, an existing target is swapped: renamed aside, the new tree
 * renamed in, the old one removed. Between the two renames (microseconds)
 * the path is missing; it never holds a partial tree.
 */
import { randomBytes } from "node:crypto";
import { alreadyExists, cancelled, invalidArgument, notFound, type SandboxError } from "../../errors.js";
import { execCollect } from "../exec-collect.js";
import type { SessionRegistry } from "../session-registry.js";
import { sftpPool } from "../sftp-pool.js";
import { notADirectory, type SftpSession, splitFilePath, validatePath } from "../sftp-session.js";
import { isGenericFailure, lstatOrUndefined, refineFailure } from "../files/common.js";
import { ArchiveRefusal, TarChecker } from "./tar-check.js";
import { tarFailure } from "./tar-errors.js";
import { gunzip, isZlibError } from "./zlib-stream.js";

export interface UploadArchiveOptions {
  /** The directory to create: absolute, or relative to the home directory. */
  path: string;
  source: AsyncIterable<Uint8Array>;
  gzip?: boolean;
  /** Replace an existing target; otherwise it is already_exists. */
  replace?: boolean;
  createParents?: boolean;
  signal?: AbortSignal;
}

export interface UploadArchiveResult {
  entries: number;
  /** Bytes of the archive as received (compressed, for gzip). */
  archiveBytes: number;
  /** Sum of the regular files' sizes. */
  fileBytes: number;
}

/** Name prefix of staging and swapped-out directories: `.<name>.sandboxd-archive-<12 hex>`. */
export const ARCHIVE_TEMP_MARK = "sandboxd-archive";

const TAR_ARGS = ["-x", "-p", "--no-same-owner", "--no-overwrite-dir", "-f", "-", "-C"];

export async function uploadArchive(registry: SessionRegistry, sandboxId: string, o: UploadArchiveOptions): Promise<UploadArchiveResult> {
  const target = validatePath(o.path).replace(/(.)\/+$/, "$1");
  const { dir, base } = splitFilePath(target);
  const staging = `${dir}/.${base}.${ARCHIVE_TEMP_MARK}-${randomBytes(6).toString("hex")}`;
  const aside = `${staging}-old`;
  const { session: sftp, release } = await sftpPool(registry).acquire(sandboxId, o.signal);
  let made = false;
  try {
    await prepare(sftp, target, dir, staging, o);
    made = true;
    const checker = new TarChecker();
    let archiveBytes = 0;
    async function* checked(): AsyncGenerator<Uint8Array> {
      const counted = (async function* () {
        for await (const c of o.source) {
          archiveBytes += c.byteLength;
          yield c;
        }
      })();
      try {
        for await (const chunk of o.gzip ? gunzip(counted) : counted) {
          if (checker.ended) continue; // past the end marker (record padding): read to the end, not sent
          checker.push(chunk);
          yield chunk;
        }
      } catch (err) {
        if (err instanceof ArchiveRefusal) throw invalidArgument("data", `archive refused: ${err.message}; nothing was unpacked`);
        if (isZlibError(err)) throw invalidArgument("data", `not a valid gzip stream: ${(err as Error).message}`);
        throw err;
      }
      if (o.signal?.aborted) throw cancelled("upload archive: the client went away");
      if (!checker.ended) {
        throw invalidArgument("data", checker.atBoundary
          ? "the archive ended without tar's end-of-archive marker: taken as cut off, nothing was unpacked"
          : "the archive ended in the middle of an entry: taken as cut off, nothing was unpacked");
      }
    }
    const r = await execCollect(registry, sandboxId, {
      argv: ["tar", ...TAR_ARGS, staging], env: { LC_ALL: "C" }, stdin: checked(),
      maxStdoutBytes: 4096, maxStderrBytes: 16384, onOutputLimit: "discard", signal: o.signal,
    });
    if (r.reason === "cancelled" || o.signal?.aborted) throw cancelled("upload archive: cancelled");
    if (r.exitCode !== 0) throw tarFailure("upload archive to", target, r.exitCode, r.stderr);
    await place(sftp, staging, target, aside, o.replace === true);
    made = false;
    await removeTree(registry, sandboxId, aside);
    return { entries: checker.entries, archiveBytes, fileBytes: checker.fileBytes };
  } catch (err) {
    throw await refineFailure(sftp, err, "upload archive to", target);
  } finally {
    if (made) await removeTree(registry, sandboxId, staging);
    release();
  }
}

async function prepare(s: SftpSession, target: string, dir: string, staging: string, o: UploadArchiveOptions): Promise<void> {
  const parent = await s.stat(dir);
  if (!parent) {
    if (!o.createParents) throw notFound(`upload archive to ${JSON.stringify(target)}: the directory ${JSON.stringify(dir)} does not exist (make_parents not set)`);
    await s.mkdirs(dir);
  } else if (!parent.isDirectory()) {
    throw notADirectory(dir);
  }
  if (!o.replace && (await lstatOrUndefined(s, target))) throw exists(target);
  await s.call<void>("mkdir", staging, (cb) => s.sftp.mkdir(staging, { mode: 0o700 }, cb));
}

/** Renames the staging directory to the target, swapping an existing one out when replacing. */
async function place(s: SftpSession, staging: string, target: string, aside: string, replace: boolean): Promise<void> {
  if (!replace) {
    try {
      // SSH_FXP_RENAME: refuses an existing target (one made while we unpacked).
      await s.call<void>("rename", target, (cb) => s.sftp.rename(staging, target, cb));
    } catch (err) {
      if (isGenericFailure(err) && (await lstatOrUndefined(s, target))) throw exists(target);
      throw err;
    }
    return;
  }
  const old = await lstatOrUndefined(s, target);
  if (old) await s.rename(target, aside);
  try {
    await s.rename(staging, target);
  } catch (err) {
    if (old) await s.rename(aside, target).catch(() => {});
    throw err;
  }
}

/**
 * `rm -rf` in the sandbox (never follows symlinks), again until the path is
 * gone: after a cancel, the killed tar may still be writing into the tree for
 * a moment, and one `rm -rf` racing it fails with "Directory not empty".
 * Best effort: a leftover is hidden, named for sandboxd, and removed by the
 * crash tidy (recovery-tidy.ts) if it ever stays.
 */
async function removeTree(registry: SessionRegistry, sandboxId: string, path: string): Promise<void> {
  const script = 'i=0; while [ -e "$1" ] && [ $i -lt 100 ]; do rm -rf -- "$1" 2>/dev/null; [ -e "$1" ] && sleep 0.05; i=$((i+1)); done';
  await execCollect(registry, sandboxId, {
    argv: ["sh", "-c", script, "sh", path], maxStdoutBytes: 1024, maxStderrBytes: 1024, onOutputLimit: "discard", timeoutMs: 120_000,
  }).catch(() => {});
}

function exists(target: string): SandboxError {
  return alreadyExists(`${JSON.stringify(target)} already exists (replace not set)`);
}

/**
 * Streaming upload over SFTP: bytes go to a hidden temp file created
 * exclusively (0600) next to the target, and are renamed over the target only
 * after every byte arrived and the expected size/sha256 matched. A failed,
 * cancelled or mismatched upload removes the temp file and never touches the
 * target. Writes are pipelined (many large WRITEs outstanding, bounded), as
 * one-at-a-time SFTP is several times slower.
 */
import { createHash, randomBytes } from "node:crypto";
import { posix } from "node:path";
import { cancelled, failedPrecondition, invalidArgument, isSandboxError, notFound, resourceExhausted } from "../errors.js";
import { abortable } from "./abortable.js";
import type { SessionRegistry } from "./session-registry.js";
import { SFTP_STATUS, sftpCode } from "./sftp-errors.js";
import { notADirectory, SftpSession, splitFilePath, validatePath } from "./sftp-session.js";

/** find(1) -name pattern of upload temp files (see server/sandboxes/upload-tidy.ts). */
export const TEMP_SUFFIX_PATTERN = ".*.sandboxd-????????????.part";

export interface UploadOptions {
  /** Absolute, or relative to the login user's home directory. */
  path: string;
  source: AsyncIterable<Uint8Array>;
  /** Permission bits of the final file. Default 0o644. */
  mode?: number;
  /** Create missing parent directories (0755); otherwise a missing parent is not_found. */
  createParents?: boolean;
  /** Lower-case or upper-case hex; a mismatch fails the upload (invalid_argument). */
  expectedSha256?: string;
  expectedSize?: number;
  signal?: AbortSignal;
  /** Outstanding SFTP WRITE requests. Default 16 (× 255 KiB with OpenSSH). */
  concurrency?: number;
}

export interface UploadResult {
  path: string;
  bytesWritten: number;
  sha256: string;
}

export async function upload(registry: SessionRegistry, sandboxId: string, o: UploadOptions): Promise<UploadResult> {
  const path = validatePath(o.path);
  const { dir, base } = splitFilePath(path);
  const mode = o.mode ?? 0o644;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw invalidArgument("mode", "must be permission bits (0 to 0o7777)");
  const expectedSha = o.expectedSha256?.toLowerCase();
  if (expectedSha !== undefined && !/^[0-9a-f]{64}$/.test(expectedSha)) throw invalidArgument("expectedSha256", "must be 64 hex digits");
  if (o.expectedSize !== undefined && !(Number.isSafeInteger(o.expectedSize) && o.expectedSize >= 0)) {
    throw invalidArgument("expectedSize", "must be a non-negative integer");
  }
  const concurrency = o.concurrency ?? 16;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw invalidArgument("concurrency", "must be a positive integer");

  if (o.signal?.aborted) throw cancelled(`upload ${JSON.stringify(path)}: cancelled`);
  const session = await SftpSession.open(registry, sandboxId, o.signal);
  let handle: Buffer | undefined;
  let tmp: string | undefined;
  try {
    const parent = await session.stat(dir);
    if (!parent) {
      if (!o.createParents) throw notFound(`parent directory ${JSON.stringify(dir)} does not exist`);
      await session.mkdirs(dir);
    } else if (!parent.isDirectory()) {
      throw notADirectory(dir);
    }
    if ((await session.stat(path))?.isDirectory()) throw failedPrecondition(`${JSON.stringify(path)} is a directory`);

    // Hidden, unique, and short enough for NAME_MAX (255) whatever the target's name.
    tmp = `${dir}/.${base.slice(0, 200)}.sandboxd-${randomBytes(6).toString("hex")}.part`;
    handle = await session.open(tmp, "wx", 0o600);

    const writer = new PipelinedWriter(session, handle, tmp, concurrency);
    const hash = createHash("sha256");
    const chunkSize = session.maxWriteLen;
    // ssh2 copies WRITE data into its packet synchronously, so once writer.write()
    // returns, the bytes are ours no more: one staging buffer is reused, and
    // full-size pieces of the caller's chunks are written without copying.
    const staging = Buffer.allocUnsafe(chunkSize);
    let fill = 0;
    let pos = 0; // file offset of the next WRITE
    let total = 0;
    for await (const chunk of abortable(o.source, o.signal, `upload ${path}`)) {
      hash.update(chunk);
      total += chunk.byteLength;
      if (o.expectedSize !== undefined && total > o.expectedSize) {
        throw invalidArgument("expectedSize", `received more than the expected ${o.expectedSize} bytes`);
      }
      const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      for (let off = 0; off < buf.length; ) {
        if (fill === 0 && buf.length - off >= chunkSize) {
          await writer.write(buf.subarray(off, off + chunkSize), pos);
          pos += chunkSize;
          off += chunkSize;
          continue;
        }
        // Small pieces are gathered: small WRITEs are slow.
        const n = Math.min(chunkSize - fill, buf.length - off);
        buf.copy(staging, fill, off, off + n);
        fill += n;
        off += n;
        if (fill === chunkSize) {
          await writer.write(staging, pos);
          pos += fill;
          fill = 0;
        }
      }
    }
    if (fill > 0) await writer.write(staging.subarray(0, fill), pos);
    await writer.flush();

    const sha256 = hash.digest("hex");
    if (o.expectedSize !== undefined && total !== o.expectedSize) {
      throw invalidArgument("expectedSize", `received ${total} bytes, expected ${o.expectedSize}`);
    }
    if (expectedSha !== undefined && sha256 !== expectedSha) {
      throw invalidArgument("expectedSha256", `content sha256 ${sha256} does not match the expected ${expectedSha}`);
    }
    await session.fchmod(handle, tmp, mode); // explicit: the server's umask must not apply
    await session.close(handle, tmp);
    handle = undefined;
    // Last chance to notice a cancel: a reset request body can look like a clean end
    // until the abort arrives a moment later, and nothing may be renamed into place then.
    if (o.signal?.aborted) throw cancelled(`upload ${JSON.stringify(path)}: cancelled`);
    await session.rename(tmp, path);
    tmp = undefined;
    return { path, bytesWritten: total, sha256 };
  } catch (err) {
    const error = o.signal?.aborted ? cancelled(`upload ${JSON.stringify(path)}: cancelled`) : await refine(session, err, dir, path);
    await cleanup(session, handle, tmp);
    throw error;
  } finally {
    session.end();
  }
}

/**
 * Tells the user's mistakes apart from other FAILUREs: sftp-server reports
 * EROFS and ENOSPC as a generic failure, so the file system is asked. A
 * read-only location (e.g. /etc in a sandbox) is FAILED_PRECONDITION naming
 * the path, a full disk RESOURCE_EXHAUSTED. Errors of the source (not
 * SandboxErrors) pass through as is.
 */
async function refine(session: SftpSession, err: unknown, dir: string, path: string): Promise<unknown> {
  if (isSandboxError(err, "internal") && sftpCode(err.cause) === SFTP_STATUS.FAILURE) {
    // The nearest existing ancestor: with make_parents the directory itself may not exist.
    for (let at = dir; ; at = posix.dirname(at)) {
      try {
        const vfs = await session.statvfs(at);
        if (vfs.f_flag & ST_RDONLY) return failedPrecondition(`upload ${JSON.stringify(path)}: ${JSON.stringify(at)} is on a read-only file system`);
        if (vfs.f_bavail * vfs.f_frsize < 4 * 1024 * 1024 || vfs.f_favail === 0) {
          return resourceExhausted(`upload ${JSON.stringify(path)}: no space left on the sandbox's disk`);
        }
        break;
      } catch (e) {
        if (!isSandboxError(e, "not_found") || at === posix.dirname(at)) break;
      }
    }
  }
  return err;
}

/** statvfs f_flag bit of a read-only mount (SSH_FXE_STATVFS_ST_RDONLY). */
const ST_RDONLY = 1;

/** Best effort, bounded: a dead session cannot clean up, and cleanup must not hang the caller. */
async function cleanup(session: SftpSession, handle: Buffer | undefined, tmp: string | undefined): Promise<void> {
  const steps = (async () => {
    if (handle) await session.close(handle, tmp ?? "").catch(() => {});
    if (tmp) await session.unlink(tmp).catch(() => {});
  })();
  await Promise.race([steps, new Promise((r) => setTimeout(r, 5_000).unref())]);
}

/** Keeps up to `concurrency` WRITE requests outstanding; the first failure fails the rest. */
class PipelinedWriter {
  private inflight = 0;
  private error: unknown;
  private wake?: () => void;

  constructor(
    private readonly session: SftpSession,
    private readonly handle: Buffer,
    private readonly path: string,
    private readonly concurrency: number,
  ) {}

  async write(data: Buffer, position: number): Promise<void> {
    while (this.inflight >= this.concurrency && this.error === undefined) await this.slot();
    if (this.error !== undefined) throw this.error;
    this.inflight++;
    this.session.write(this.handle, this.path, data, position).then(
      () => this.done(),
      (err) => this.done((this.error ??= err)),
    );
  }

  async flush(): Promise<void> {
    while (this.inflight > 0) await this.slot();
    if (this.error !== undefined) throw this.error;
  }

  private slot(): Promise<void> {
    return new Promise((r) => (this.wake = r));
  }

  private done(_err?: unknown): void {
    this.inflight--;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

/**
 * One SFTP session (one channel slot, one sftp-server process) per transfer:
 * opening one costs ~7 ms here, negligible next to a transfer, and a failed
 * or cancelled transfer can simply end its session without disturbing others.
 *
 * Paths: absolute, or relative to the login user's home directory — the
 * directory sftp-server starts in, the same rule exec's cwd follows.
 */
import { posix } from "node:path";
import type { SFTPWrapper, Stats } from "ssh2";
import { failedPrecondition, invalidArgument } from "../errors.js";
import type { SessionRegistry } from "./session-registry.js";
import { sftpError } from "./sftp-errors.js";

export interface StatVfs {
  f_frsize: number;
  f_bavail: number;
  f_favail: number;
  /** Bit 0 (SSH_FXE_STATVFS_ST_RDONLY): mounted read-only. */
  f_flag: number;
}

export function validatePath(path: unknown, field = "path"): string {
  if (typeof path !== "string" || path === "") throw invalidArgument(field, "must be a non-empty path");
  if (path.includes("\0")) throw invalidArgument(field, "must not contain NUL bytes");
  return path;
}

/** Splits a file path into its directory and name; rejects paths that name no file. */
export function splitFilePath(path: string, field = "path"): { dir: string; base: string } {
  const base = posix.basename(path);
  if (path.endsWith("/") || base === "" || base === "." || base === "..") {
    throw invalidArgument(field, `${JSON.stringify(path)} does not name a file`);
  }
  return { dir: posix.dirname(path), base };
}

/**
 * Bounds for the limits an SFTP server advertises (limits@openssh.com). The
 * server runs in the sandbox, so what it says is the sandbox's word: ssh2
 * takes it as is, and download/upload size their buffers by it (16 in
 * flight), so a server claiming 64 MiB once made one Download cost sandboxd
 * over 1 GB. Clamped to OpenSSH's own values: READ/WRITE data at most
 * 261120 bytes (256 KiB packet minus overhead), packets at most 256 KiB (what
 * ssh2 accepts inbound anyway), and at least 4 KiB of data so a server
 * claiming 1 byte cannot turn a transfer into millions of round trips.
 */
export const SFTP_MAX_DATA_LEN = 261_120;
export const SFTP_MIN_DATA_LEN = 4096;
export const SFTP_MAX_PACKET_LEN = 256 * 1024;

interface Ssh2SftpLimits {
  _maxReadLen: number;
  _maxWriteLen: number;
  _maxOutPktLen: number;
}

function clamp(v: unknown, min: number, max: number): number {
  const n = typeof v === "number" || typeof v === "bigint" ? Number(v) : NaN;
  return Number.isNaN(n) ? min : Math.min(max, Math.max(min, Math.floor(n)));
}

/** Pins ssh2's (private, server-set) SFTP limits inside our fixed bounds. */
export function clampSftpLimits(sftp: SFTPWrapper): void {
  const l = sftp as unknown as Ssh2SftpLimits;
  l._maxReadLen = clamp(l._maxReadLen, SFTP_MIN_DATA_LEN, SFTP_MAX_DATA_LEN);
  l._maxWriteLen = clamp(l._maxWriteLen, SFTP_MIN_DATA_LEN, SFTP_MAX_DATA_LEN);
  l._maxOutPktLen = clamp(l._maxOutPktLen, SFTP_MIN_DATA_LEN + 1024, SFTP_MAX_PACKET_LEN);
}

export class SftpSession {
  private ended = false;

  private constructor(readonly sftp: SFTPWrapper) {
    sftp.on("error", () => {}); // protocol errors fail the pending requests too
    // ssh2 read the server's limits before 'ready' (the session is open now); they never change after.
    clampSftpLimits(sftp);
  }

  /** `signal` only bounds the wait for a channel; callers decide what abort means later. */
  static async open(registry: SessionRegistry, sandboxId: string, signal?: AbortSignal): Promise<SftpSession> {
    const { value } = await registry.openSftp(sandboxId, { signal });
    return new SftpSession(value);
  }

  /** Server limits from limits@openssh.com, clamped (255 KiB for OpenSSH). Re-clamped on read: never trust them. */
  get maxReadLen(): number {
    return clamp((this.sftp as unknown as Ssh2SftpLimits)._maxReadLen, SFTP_MIN_DATA_LEN, SFTP_MAX_DATA_LEN);
  }

  get maxWriteLen(): number {
    return clamp((this.sftp as unknown as Ssh2SftpLimits)._maxWriteLen, SFTP_MIN_DATA_LEN, SFTP_MAX_DATA_LEN);
  }

  /** Ends the session; outstanding requests fail. The slot frees when the channel closes. */
  readonly end = (): void => {
    if (this.ended) return;
    this.ended = true;
    this.sftp.end();
  };

  get isEnded(): boolean {
    return this.ended;
  }

  /** Wraps a callback call, mapping errors to SandboxErrors. */
  call<T>(op: string, path: string, fn: (cb: (err: Error | undefined | null, v: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(sftpError(err, op, path)) : resolve(v))));
  }

  /** undefined when the path does not exist. */
  async stat(path: string): Promise<Stats | undefined> {
    try {
      return await this.call<Stats>("stat", path, (cb) => this.sftp.stat(path, cb));
    } catch (err) {
      if (err && (err as { kind?: string }).kind === "not_found") return undefined;
      throw err;
    }
  }

  open(path: string, flags: "r" | "wx", mode?: number): Promise<Buffer> {
    return this.call<Buffer>("open", path, (cb) =>
      mode === undefined ? this.sftp.open(path, flags, cb) : this.sftp.open(path, flags, { mode }, cb),
    );
  }

  close(handle: Buffer, path: string): Promise<void> {
    return this.call<void>("close", path, (cb) => this.sftp.close(handle, cb));
  }

  fstat(handle: Buffer, path: string): Promise<Stats> {
    return this.call<Stats>("stat", path, (cb) => this.sftp.fstat(handle, cb));
  }

  fchmod(handle: Buffer, path: string, mode: number): Promise<void> {
    return this.call<void>("chmod", path, (cb) => this.sftp.fchmod(handle, mode, cb));
  }

  /** A FAILURE maps to internal with the ssh2 error as cause, so callers can refine it (ENOSPC). */
  write(handle: Buffer, path: string, data: Buffer, position: number): Promise<void> {
    return this.call<void>("write", path, (cb) => this.sftp.write(handle, data, 0, data.length, position, (err) => cb(err, undefined)));
  }

  /** Reads up to `len` bytes at `position`; fewer only at end of file. */
  async read(handle: Buffer, path: string, len: number, position: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const n = await this.call<number>("read", path, (cb) =>
        this.sftp.read(handle, buf, got, len - got, position + got, (err, bytes) => cb(err, bytes)),
      );
      if (n === 0) break; // EOF (ssh2 turns the EOF status into 0 bytes)
      got += n;
    }
    return got === len ? buf : buf.subarray(0, got);
  }

  unlink(path: string): Promise<void> {
    return this.call<void>("unlink", path, (cb) => this.sftp.unlink(path, cb));
  }

  /** posix-rename@openssh.com: atomically replaces an existing target. */
  rename(from: string, to: string): Promise<void> {
    return this.call<void>("rename", to, (cb) => this.sftp.ext_openssh_rename(from, to, cb));
  }

  statvfs(path: string): Promise<StatVfs> {
    return this.call<StatVfs>("statvfs", path, (cb) => this.sftp.ext_openssh_statvfs(path, cb));
  }

  /** mkdir -p; existing directories are fine, a file in the way is failed_precondition. */
  async mkdirs(dir: string, mode = 0o755): Promise<void> {
    const st = await this.stat(dir);
    if (st) {
      if (!st.isDirectory()) throw notADirectory(dir);
      return;
    }
    const parent = posix.dirname(dir);
    if (parent !== dir) await this.mkdirs(parent, mode);
    try {
      await this.call<void>("mkdir", dir, (cb) => this.sftp.mkdir(dir, { mode }, cb));
    } catch (err) {
      // Lost a race with a concurrent creator: fine if it is a directory now.
      if (isKind(err, "internal")) {
        const again = await this.stat(dir);
        if (again?.isDirectory()) return;
      }
      throw err;
    }
  }
}

function isKind(err: unknown, kind: string): boolean {
  return (err as { kind?: string } | null)?.kind === kind;
}

export function notADirectory(path: string) {
  return failedPrecondition(`${JSON.stringify(path)} is not a directory`);
}

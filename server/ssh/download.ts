/**
 * Streaming download over SFTP from a byte offset: an "info" event (size,
 * mode) first, then data chunks in order, then "done" with the sha256 of
 * exactly the bytes sent. Reads are pipelined (up to `concurrency` READs of
 * the server's maximum length outstanding); memory stays bounded by that
 * window because nothing more is requested while the consumer is behind.
 */
import { createHash } from "node:crypto";
import { cancelled, failedPrecondition, invalidArgument } from "../errors.js";
import type { SessionRegistry } from "./session-registry.js";
import { SftpSession, validatePath } from "./sftp-session.js";

export interface DownloadOptions {
  /** Absolute, or relative to the login user's home directory. */
  path: string;
  /** Start here (resume). Must be ≤ the file size. Default 0. */
  offset?: number;
  /** At most this many bytes. Default: to the end of the file. */
  length?: number;
  /** Aborting ends the SFTP session at once; iteration then throws cancelled. */
  signal?: AbortSignal;
  /** Outstanding SFTP READ requests. Default 16 (× 255 KiB with OpenSSH). */
  concurrency?: number;
}

export type DownloadEvent =
  | { type: "info"; size: number; mode: number; offset: number; length: number }
  | { type: "data"; data: Buffer }
  | { type: "done"; bytes: number; sha256: string };

/** Validates at once; the file is opened when iteration starts. */
export function download(registry: SessionRegistry, sandboxId: string, o: DownloadOptions): AsyncGenerator<DownloadEvent> {
  const path = validatePath(o.path);
  const offset = o.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0) throw invalidArgument("offset", "must be a non-negative integer");
  if (o.length !== undefined && !(Number.isSafeInteger(o.length) && o.length >= 0)) {
    throw invalidArgument("length", "must be a non-negative integer");
  }
  const concurrency = o.concurrency ?? 16;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw invalidArgument("concurrency", "must be a positive integer");
  return run(registry, sandboxId, path, offset, o.length, concurrency, o.signal);
}

async function* run(
  registry: SessionRegistry,
  sandboxId: string,
  path: string,
  offset: number,
  length: number | undefined,
  concurrency: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<DownloadEvent> {
  const what = `download ${JSON.stringify(path)}`;
  if (signal?.aborted) throw cancelled(`${what}: cancelled`);
  const session = await SftpSession.open(registry, sandboxId, signal);
  // Release from the abort listener too: a consumer stalled at `yield` may never resume us.
  signal?.addEventListener("abort", session.end, { once: true });
  try {
    const handle = await session.open(path, "r");
    const st = await session.fstat(handle, path);
    if (st.isDirectory()) throw failedPrecondition(`${JSON.stringify(path)} is a directory`);
    if (!st.isFile()) throw failedPrecondition(`${JSON.stringify(path)} is not a regular file`);
    if (offset > st.size) {
      throw invalidArgument("offset", `${offset} is beyond the end of ${JSON.stringify(path)} (${st.size} bytes)`);
    }
    const end = length === undefined ? st.size : Math.min(st.size, offset + length);
    yield { type: "info", size: st.size, mode: st.mode & 0o7777, offset, length: end - offset };

    const h = handle;
    const chunk = session.maxReadLen;
    const hash = createHash("sha256");
    const inflight: Array<{ expect: number; data: Promise<Buffer> }> = [];
    let next = offset;
    let sent = 0;
    const fill = () => {
      while (inflight.length < concurrency && next < end) {
        const len = Math.min(chunk, end - next);
        const data = session.read(h, path, len, next);
        data.catch(() => {}); // may be abandoned if we stop early
        inflight.push({ expect: len, data });
        next += len;
      }
    };
    fill();
    while (inflight.length > 0) {
      const slot = inflight.shift()!;
      const data = await slot.data;
      fill();
      if (data.length > 0) {
        hash.update(data);
        sent += data.length;
        yield { type: "data", data };
      }
      if (data.length < slot.expect) {
        throw failedPrecondition(`${JSON.stringify(path)} shrank during the download (ended at byte ${offset + sent})`);
      }
    }
    yield { type: "done", bytes: sent, sha256: hash.digest("hex") };
  } catch (err) {
    if (signal?.aborted) throw cancelled(`${what}: cancelled`);
    throw err;
  } finally {
    signal?.removeEventListener("abort", session.end);
    session.end(); // sftp-server exits and closes the handle; no round trip needed
  }
}

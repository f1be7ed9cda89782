/**
 * ListDir: a directory's entries in batches, read with SFTP READDIR on an
 * open handle (one server batch at a time), never the whole listing at once.
 * Recursive listings walk depth first; only the names of the subdirectories
 * still to visit are held. Symlinks are listed, never descended into.
 */
import type { FileEntry as Ssh2FileEntry, Stats } from "ssh2";
import { cancelled, invalidArgument } from "../../errors.js";
import type { SessionRegistry } from "../session-registry.js";
import { SFTP_STATUS, sftpCode, sftpError } from "../sftp-errors.js";
import { sftpPool } from "../sftp-pool.js";
import { notADirectory, type SftpSession } from "../sftp-session.js";
import { entryOf, kindOf, readlink, validatePath, type FileEntry } from "./common.js";

export const LIST_BATCH = 1000;
export const MAX_LIST_DEPTH = 64;
/** READDIR requests kept in flight on one directory handle. */
const READDIR_IN_FLIGHT = 8;

export interface ListDirOptions {
  path: string;
  /** 0 or 1: the directory's entries; N: down to N levels. */
  depth?: number;
  batchSize?: number;
  signal?: AbortSignal;
}

/** Reads a directory handle batch by batch; undefined at the end. */
export async function readBatch(s: SftpSession, handle: Buffer, path: string): Promise<Ssh2FileEntry[] | undefined> {
  try {
    return await new Promise<Ssh2FileEntry[]>((resolve, reject) =>
      s.sftp.readdir(handle, (err, list) => (err ? reject(err) : resolve(list as Ssh2FileEntry[]))),
    );
  } catch (err) {
    if (sftpCode(err) === SFTP_STATUS.EOF) return undefined;
    throw sftpError(err, "readdir", path);
  }
}

/**
 * Every batch of an open directory, with READDIRs pipelined: a listing is
 * otherwise one round trip per ~100 entries, mostly spent waiting. The server
 * answers in order (each request gets the next batch, then EOF), so the
 * batches arrive in order.
 */
export async function* readBatches(s: SftpSession, handle: Buffer, path: string, inFlight = READDIR_IN_FLIGHT): AsyncGenerator<Ssh2FileEntry[]> {
  type Outcome = { list?: Ssh2FileEntry[]; err?: unknown };
  const pending: Array<Promise<Outcome>> = [];
  let ended = false;
  const fill = () => {
    while (!ended && pending.length < inFlight) pending.push(readBatch(s, handle, path).then((list) => ({ list }), (err: unknown) => ({ err })));
  };
  try {
    fill();
    while (pending.length > 0) {
      const { list, err } = await pending.shift()!;
      if (err) throw err;
      if (!list) {
        ended = true;
        continue;
      }
      fill();
      yield list;
    }
  } finally {
    ended = true;
    await Promise.all(pending); // settles (never rejects): no request outlives the handle's close
  }
}

export function openDir(s: SftpSession, path: string): Promise<Buffer> {
  return s.call<Buffer>("opendir", path, (cb) => s.sftp.opendir(path, cb));
}

export async function* listDir(registry: SessionRegistry, sandboxId: string, o: ListDirOptions): AsyncGenerator<FileEntry[]> {
  const root = validatePath(o.path);
  const depth = Math.max(1, o.depth ?? 1);
  if (!Number.isInteger(depth) || depth > MAX_LIST_DEPTH) throw invalidArgument("depth", `must be at most ${MAX_LIST_DEPTH}`);
  const batchSize = o.batchSize ?? LIST_BATCH;
  const { session, release } = await sftpPool(registry).acquire(sandboxId, o.signal);
  try {
    const st = await session.call<Stats>("stat", root, (cb) => session.sftp.stat(root, cb));
    if (!st.isDirectory()) throw notADirectory(root);
    let batch: FileEntry[] = [];
    // Depth first: [path, level] of directories still to list.
    const stack: Array<[string, number]> = [[root, 1]];
    while (stack.length > 0) {
      const [dir, level] = stack.pop()!;
      const subdirs: string[] = [];
      let handle: Buffer;
      try {
        handle = await openDir(session, dir);
      } catch (err) {
        if (dir === root) throw err;
        continue; // a subdirectory that vanished or may not be read: skipped
      }
      try {
        for await (const list of readBatches(session, handle, dir)) {
          if (o.signal?.aborted) throw cancelled(`list ${JSON.stringify(root)}: cancelled`);
          for (const e of list) {
            const path = dir === "/" ? `/${e.filename}` : `${dir}/${e.filename}`;
            const kind = kindOf(e.attrs.mode);
            const target = kind === "symlink" ? await readlink(session, path).catch(() => "") : "";
            batch.push(entryOf(e.filename, path, e.attrs, target));
            if (kind === "directory" && level < depth) subdirs.push(path);
            if (batch.length >= batchSize) {
              yield batch;
              batch = [];
            }
          }
        }
      } finally {
        await session.close(handle, dir).catch(() => {});
      }
      for (let i = subdirs.length - 1; i >= 0; i--) stack.push([subdirs[i]!, level + 1]);
    }
    if (batch.length > 0) yield batch;
  } finally {
    release();
  }
}

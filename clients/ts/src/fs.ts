/** File-system calls: stat, listDir, makeDir, remove, move, watch. */
import "./private/polyfill.js";
import { FileType, WatchEventType, type FileInfo as PbFileInfo, type WatchEvent as PbWatchEvent } from "./gen/sandbox/v1/sandbox_pb.js";
import { CanceledError, Code, errorForCode, toSandboxdError } from "./errors.js";
import { num, toDate } from "./private/convert.js";
import { callOptions, consume, linkedController, type CallOptions, type Context } from "./private/context.js";
import { withRetry } from "./private/retry.js";

export type FileKind = "file" | "directory" | "symlink" | "other" | "unspecified";

/** One file, as the sandbox sees it. */
export interface FileInfo {
  name: string;
  path: string;
  type: FileKind;
  size: number;
  /** Permission bits (0 to 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  mtime: Date | undefined;
  /** For a symlink: what it points to. */
  symlinkTarget: string;
}

const kinds: Record<FileType, FileKind> = {
  [FileType.UNSPECIFIED]: "unspecified",
  [FileType.FILE]: "file",
  [FileType.DIRECTORY]: "directory",
  [FileType.SYMLINK]: "symlink",
  [FileType.OTHER]: "other",
};

export function fileInfo(f: PbFileInfo): FileInfo {
  return {
    name: f.name,
    path: f.path,
    type: kinds[f.type] ?? "unspecified",
    size: num(f.size),
    mode: f.mode,
    uid: f.uid,
    gid: f.gid,
    mtime: toDate(f.mtime),
    symlinkTarget: f.symlinkTarget,
  };
}

export async function stat(ctx: Context, sandboxId: string, path: string, o: CallOptions & { followSymlinks?: boolean } = {}): Promise<FileInfo> {
  const rpc = await ctx.rpc();
  const res = await withRetry(
    () => rpc.stat({ sandboxId, path, followSymlinks: o.followSymlinks ?? false }, callOptions(ctx, o, true)),
    ctx.retry,
    o.signal,
  );
  if (!res.info) throw errorForCode(Code.Internal, "stat: no info in the response");
  return fileInfo(res.info);
}

export async function listDir(ctx: Context, sandboxId: string, path: string, o: CallOptions & { depth?: number } = {}): Promise<FileInfo[]> {
  const rpc = await ctx.rpc();
  return withRetry(
    async () => {
      const out: FileInfo[] = [];
      const req = { sandboxId, path, depth: o.depth ?? 1 };
      for await (const res of consume((signal) => rpc.listDir(req, callOptions(ctx, o, true, signal)), o.signal)) {
        for (const e of res.entries) out.push(fileInfo(e));
      }
      return out;
    },
    ctx.retry,
    o.signal,
  );
}

async function unary<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toSandboxdError(e);
  }
}

export async function makeDir(ctx: Context, sandboxId: string, path: string, o: CallOptions & { parents?: boolean; mode?: number } = {}): Promise<void> {
  const rpc = await ctx.rpc();
  await unary(() =>
    rpc.makeDir({ sandboxId, path, parents: o.parents ?? false, ...(o.mode !== undefined && { mode: o.mode }) }, callOptions(ctx, o, true)),
  );
}

export async function remove(ctx: Context, sandboxId: string, path: string, o: CallOptions & { recursive?: boolean } = {}): Promise<void> {
  const rpc = await ctx.rpc();
  await unary(() => rpc.remove({ sandboxId, path, recursive: o.recursive ?? false }, callOptions(ctx, o, true)));
}

export async function move(ctx: Context, sandboxId: string, from: string, to: string, o: CallOptions & { overwrite?: boolean } = {}): Promise<void> {
  const rpc = await ctx.rpc();
  await unary(() => rpc.move({ sandboxId, from, to, overwrite: o.overwrite ?? false }, callOptions(ctx, o, true)));
}

export type WatchEventKind = "created" | "modified" | "removed" | "renamed" | "overflow" | "unspecified";

export interface WatchEvent {
  path: string;
  type: WatchEventKind;
  /** For "renamed": the path before. */
  oldPath: string;
  time: Date | undefined;
  isDir: boolean;
}

const watchKinds: Record<WatchEventType, WatchEventKind> = {
  [WatchEventType.UNSPECIFIED]: "unspecified",
  [WatchEventType.CREATED]: "created",
  [WatchEventType.MODIFIED]: "modified",
  [WatchEventType.REMOVED]: "removed",
  [WatchEventType.RENAMED]: "renamed",
  [WatchEventType.OVERFLOW]: "overflow",
};

function watchEvent(e: PbWatchEvent): WatchEvent {
  return { path: e.path, type: watchKinds[e.type] ?? "unspecified", oldPath: e.oldPath, time: toDate(e.time), isDir: e.isDir };
}

/**
 * A running watch, ready when `sb.watch()` resolves: every change after that
 * is reported. Iterate it for events; `close()` (or leaving the loop, or
 * `await using`) ends the watch.
 */
export class Watcher implements AsyncIterable<WatchEvent> {
  #pending: WatchEvent[];
  #it: AsyncGenerator<{ events: PbWatchEvent[] }>;
  #closed = false;
  #stop: () => void;

  constructor(it: AsyncGenerator<{ events: PbWatchEvent[] }>, first: WatchEvent[], stop: () => void) {
    this.#it = it;
    this.#pending = first;
    this.#stop = stop;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<WatchEvent> {
    try {
      for (;;) {
        while (this.#pending.length > 0) yield this.#pending.shift()!;
        if (this.#closed) return;
        let r: IteratorResult<{ events: PbWatchEvent[] }>;
        try {
          r = await this.#it.next();
        } catch (e) {
          if (this.#closed && e instanceof CanceledError) return;
          throw e;
        }
        if (r.done) return;
        this.#pending.push(...r.value.events.map(watchEvent));
      }
    } finally {
      await this.close();
    }
  }

  /** Ends the watch. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop();
    await this.#it.return(undefined).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export async function watch(ctx: Context, sandboxId: string, path: string, o: CallOptions & { recursive?: boolean } = {}): Promise<Watcher> {
  const rpc = await ctx.rpc();
  const req = { sandboxId, path, recursive: o.recursive ?? false };
  const { controller, dispose } = linkedController(o.signal);
  const it = consume((signal) => rpc.watch(req, callOptions(ctx, o, false, signal)), controller.signal);
  let first: IteratorResult<{ events: PbWatchEvent[] }>;
  try {
    first = await it.next();
  } catch (e) {
    dispose();
    throw e;
  }
  if (first.done) {
    dispose();
    throw errorForCode(Code.Unavailable, "watch: the stream ended before it was ready");
  }
  return new Watcher(it, first.value.events.map(watchEvent), () => {
    controller.abort();
    dispose();
  });
}

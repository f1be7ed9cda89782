/**
 * Watch: `sbx-run watch` (inotify inside the sandbox, as the sandbox user)
 * streamed over one SSH exec; its frames (frames.ts) become batches of events.
 * The helper ends when the exec's channel closes (cancel, dropped connection).
 */
import { cancelled, internal, permissionDenied, resourceExhausted } from "../../errors.js";
import { FrameError, FrameParser, type WatchChange } from "../commands/frames.js";
import { helperError, helperMessage, streamHelper } from "../commands/helper.js";
import type { SessionRegistry } from "../session-registry.js";
import { validatePath } from "./common.js";

/** Events per batch at most. */
export const WATCH_BATCH = 1000;

export interface WatchChangeEvent {
  type: WatchChange | "overflow";
  /** The watched path as asked for, joined with the path below it (for overflow: the watched path). */
  path: string;
  /** For renamed: the path before. */
  oldPath: string;
  timeMs: number;
  isDir: boolean;
}

export type WatchItem = { ready: true } | { events: WatchChangeEvent[] };

export interface WatchOptions {
  path: string;
  recursive?: boolean;
  signal?: AbortSignal;
}

/** Exit status of `sbx-run watch` when the inotify limits are used up. */
const RC_LIMIT = 6;
const RC_PERM = 7;

export async function* watchDir(registry: SessionRegistry, sandboxId: string, o: WatchOptions): AsyncGenerator<WatchItem> {
  const root = validatePath(o.path);
  const base = root.length > 1 ? root.replace(/\/+$/, "") || "/" : root;
  const join = (rel: string) => (rel === "" ? base : base === "/" ? `/${rel}` : `${base}/${rel}`);
  if (o.signal?.aborted) throw cancelled(`watch ${JSON.stringify(root)}: cancelled`);
  const stream = await streamHelper(registry, sandboxId, ["watch", "--path", root, ...(o.recursive ? ["--recursive"] : [])], {
    signal: o.signal, maxStderrBytes: 4096, onOutputLimit: "discard",
  });
  const parser = new FrameParser();
  let stderr = "";
  let ready = false;
  try {
    for await (const ev of stream) {
      if (ev.type === "stdout") {
        let batch: WatchChangeEvent[] = [];
        for (const f of parser.push(ev.data)) {
          if (f.kind === "ready") {
            if (ready) throw new FrameError("a second ready frame");
            ready = true;
            yield { ready: true };
          } else if (f.kind === "overflow") {
            batch.push({ type: "overflow", path: base, oldPath: "", timeMs: Date.now(), isDir: true });
          } else if (f.kind === "watch") {
            if (!ready) throw new FrameError("an event before the ready frame");
            const e = f.event;
            batch.push({ type: e.type, path: join(e.path), oldPath: e.oldPath ? join(e.oldPath) : "", timeMs: e.timeMs, isDir: e.isDir });
          } else {
            throw new FrameError(`unexpected ${f.kind} frame`);
          }
          if (batch.length >= WATCH_BATCH) {
            yield { events: batch };
            batch = [];
          }
        }
        if (batch.length > 0) yield { events: batch };
      } else if (ev.type === "stderr") {
        if (stderr.length < 4096) stderr += ev.data.toString("utf8");
      } else if (ev.type === "exited") {
        if (ev.reason === "cancelled") throw cancelled(`watch ${JSON.stringify(root)}: cancelled`);
        const r = { exitCode: ev.exitCode, stderr: Buffer.from(stderr) };
        if (ev.exitCode === RC_LIMIT) throw resourceExhausted(`watch ${JSON.stringify(root)}: ${helperMessage(r)}`);
        if (ev.exitCode === RC_PERM) throw permissionDenied(`watch ${JSON.stringify(root)}: ${helperMessage(r)}`);
        if (ev.exitCode === 0) throw internal(`watch ${JSON.stringify(root)}: sbx-run watch ended`);
        throw helperError(r, "path");
      }
    }
  } catch (err) {
    if (err instanceof FrameError) throw internal(`sbx-run watch: ${err.message}`);
    throw err;
  } finally {
    stream.cancel();
  }
}

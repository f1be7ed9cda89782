/**
 * Parser for the frames `sbx-run attach` writes on its stdout (README.md beside
 * this file). Incremental and bounded: it holds at most one partial frame (a
 * header of ≤ 25 bytes plus a body of ≤ 256 KiB), whatever the reader feeds it,
 * and rejects anything malformed with a FrameError instead of buffering on.
 *
 *   'O' | 'E'  u64 offset, u32 length (≤ 262144), bytes   stdout / stderr data
 *   'X'        u32 length (≤ 65536), exit.json bytes      the end (last frame)
 *   'D'        u64 earliest stdout, u64 earliest stderr   offset no longer held (attach exits 3)
 *   'G'        u64 stream (1 stdout, 2 stderr), u64 from, u64 to   bytes [from, to) were dropped
 *
 * and those `sbx-run watch` writes:
 *
 *   'R'        (nothing)                                  the watches are set
 *   'W'        u32 length (≤ 8206), record                one change (watchRecord below)
 *   'Q'        (nothing)                                  events were lost (inotify queue overflow)
 *
 * All integers big-endian. The frames come from inside the sandbox
 * (sandbox-tools/sbx-run/README.md), so nothing in them is trusted.
 */
import type { Readable } from "node:stream";

export const FRAME_DATA_MAX = 262_144;
export const FRAME_EXIT_MAX = 65_536;
/** A watch record: type, is_dir, u64 ms, u16 length + path, u16 length + old path (each ≤ PATH_MAX). */
export const FRAME_WATCH_MAX = 1 + 1 + 8 + 2 + 4096 + 2 + 4096;

export type WatchChange = "created" | "modified" | "removed" | "renamed";

export interface WatchRecord {
  type: WatchChange;
  isDir: boolean;
  /** Milliseconds since the epoch (sandbox clock). */
  timeMs: number;
  /** Relative to the watched directory. */
  path: string;
  oldPath: string;
}

export type OutputStream = "stdout" | "stderr";

/** exit.json: exitCode or signal; lost when the supervisor died without writing it. */
export interface ExitInfo {
  exitCode?: number;
  signal?: string;
  endedAt?: number;
  durationMs?: number;
  lost?: boolean;
}

export type Frame =
  | { kind: "data"; stream: OutputStream; offset: number; data: Buffer }
  | { kind: "exit"; exit: ExitInfo }
  | { kind: "dropped"; stdoutEarliest: number; stderrEarliest: number }
  | { kind: "gap"; stream: OutputStream; from: number; to: number }
  | { kind: "ready" }
  | { kind: "overflow" }
  | { kind: "watch"; event: WatchRecord };

export class FrameError extends Error {
  override name = "FrameError";
}

/** Header length by frame type (the type byte included). */
const HEADER: Record<number, number> = { 0x4f: 13, 0x45: 13, 0x58: 5, 0x44: 17, 0x47: 25, 0x52: 1, 0x51: 1, 0x57: 5 };

const CHANGES: WatchChange[] = ["created", "modified", "removed", "renamed"];

function watchRecord(b: Buffer): WatchRecord {
  if (b.length < 14) throw new FrameError("watch record too short");
  const type = CHANGES[b[0]! - 1];
  if (type === undefined) throw new FrameError(`unknown watch event type ${b[0]}`);
  const pathLen = b.readUInt16BE(10);
  if (12 + pathLen + 2 > b.length) throw new FrameError("watch record: path length out of range");
  const oldLen = b.readUInt16BE(12 + pathLen);
  if (14 + pathLen + oldLen !== b.length) throw new FrameError("watch record: lengths do not add up");
  return {
    type, isDir: b[1] !== 0, timeMs: u64(b, 2),
    path: b.toString("utf8", 12, 12 + pathLen), oldPath: b.toString("utf8", 14 + pathLen, 14 + pathLen + oldLen),
  };
}

function u64(b: Buffer, at: number): number {
  const v = b.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FrameError(`offset ${v} out of range`);
  return Number(v);
}

function streamOf(id: number): OutputStream {
  if (id === 1) return "stdout";
  if (id === 2) return "stderr";
  throw new FrameError(`unknown stream id ${id}`);
}

export class FrameParser {
  private readonly head = Buffer.alloc(25);
  private headLen = 0;
  private headWant = 0;
  private body: Buffer | null = null;
  private bodyLen = 0;
  private ended = false;

  /** Frames completed by this chunk (data frames may share the chunk's memory). */
  push(chunk: Buffer): Frame[] {
    if (this.ended) throw new FrameError("data after the exit frame");
    const out: Frame[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.body === null) {
        if (this.headLen === 0) {
          const want = HEADER[chunk[i]!];
          if (want === undefined) throw new FrameError(`unknown frame type 0x${chunk[i]!.toString(16)}`);
          this.headWant = want;
        }
        const n = Math.min(this.headWant - this.headLen, chunk.length - i);
        chunk.copy(this.head, this.headLen, i, i + n);
        this.headLen += n;
        i += n;
        if (this.headLen < this.headWant) break;
        const len = this.bodyLength();
        if (len === 0) {
          out.push(this.complete(Buffer.alloc(0)));
          continue;
        }
        if (chunk.length - i >= len) {
          // The whole body is in this chunk: no copy.
          out.push(this.complete(chunk.subarray(i, i + len)));
          i += len;
          continue;
        }
        this.body = Buffer.allocUnsafe(len);
        this.bodyLen = 0;
      }
      const n = Math.min(this.body.length - this.bodyLen, chunk.length - i);
      chunk.copy(this.body, this.bodyLen, i, i + n);
      this.bodyLen += n;
      i += n;
      if (this.bodyLen === this.body.length) {
        const body = this.body;
        this.body = null;
        out.push(this.complete(body));
      }
    }
    return out;
  }

  /** True between frames (a stream may end here). */
  get atBoundary(): boolean {
    return this.headLen === 0 && this.body === null;
  }

  /** Call at the end of the input: throws if it stopped inside a frame. */
  finish(): void {
    if (!this.atBoundary) throw new FrameError("input ended inside a frame");
  }

  private bodyLength(): number {
    const type = this.head[0];
    if (type === 0x4f || type === 0x45) {
      const len = this.head.readUInt32BE(9);
      if (len > FRAME_DATA_MAX) throw new FrameError(`data frame of ${len} bytes exceeds ${FRAME_DATA_MAX}`);
      return len;
    }
    if (type === 0x57) {
      const len = this.head.readUInt32BE(1);
      if (len > FRAME_WATCH_MAX) throw new FrameError(`watch frame of ${len} bytes exceeds ${FRAME_WATCH_MAX}`);
      return len;
    }
    if (type === 0x58) {
      const len = this.head.readUInt32BE(1);
      if (len > FRAME_EXIT_MAX) throw new FrameError(`exit frame of ${len} bytes exceeds ${FRAME_EXIT_MAX}`);
      return len;
    }
    return 0;
  }

  private complete(body: Buffer): Frame {
    const h = this.head;
    const type = h[0];
    this.headLen = 0;
    switch (type) {
      case 0x4f:
      case 0x45:
        return { kind: "data", stream: type === 0x4f ? "stdout" : "stderr", offset: u64(h, 1), data: body };
      case 0x58: {
        let exit: unknown;
        try {
          exit = JSON.parse(body.toString("utf8"));
        } catch {
          throw new FrameError("exit frame is not JSON");
        }
        if (typeof exit !== "object" || exit === null || Array.isArray(exit)) throw new FrameError("exit frame is not an object");
        this.ended = true;
        return { kind: "exit", exit: exit as ExitInfo };
      }
      case 0x52:
        return { kind: "ready" };
      case 0x51:
        return { kind: "overflow" };
      case 0x57:
        return { kind: "watch", event: watchRecord(body) };
      case 0x44:
        return { kind: "dropped", stdoutEarliest: u64(h, 1), stderrEarliest: u64(h, 9) };
      default:
        return { kind: "gap", stream: streamOf(u64(h, 1)), from: u64(h, 9), to: u64(h, 17) };
    }
  }
}

/**
 * Frames from a readable (an attach process's stdout, an SSH channel). Pulls
 * one chunk at a time, so a slow consumer applies backpressure to the source.
 */
export async function* readFrames(source: Readable): AsyncGenerator<Frame> {
  const parser = new FrameParser();
  for await (const chunk of source) {
    for (const frame of parser.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer))) yield frame;
  }
  parser.finish();
}

/** exit.json: how a kept command ended. */
export interface KeptExit {
  exitCode: number | null;
  signal: string | null;
  /** The supervisor died without recording the end (kill -9, a crash of the sandbox). */
  lost: boolean;
  durationMs: number;
}

/** Parses and checks an exit record (also used for `sbx-run list`). */
export function parseExit(o: unknown): KeptExit {
  if (typeof o !== "object" || o === null) throw new FrameError("malformed exit record");
  const r = o as Record<string, unknown>;
  const exitCode = Number.isInteger(r.exitCode) ? (r.exitCode as number) : null;
  const signal = typeof r.signal === "string" && /^SIG[A-Z0-9]{1,10}$/.test(r.signal) ? r.signal : null;
  const durationMs = Number.isFinite(r.durationMs) && (r.durationMs as number) >= 0 ? Math.round(r.durationMs as number) : 0;
  return { exitCode, signal, lost: r.lost === true, durationMs };
}

/**
 * Commands: run (collect the output), stream (events as they come), text
 * decoding that never splits a UTF-8 character, kept (background) commands.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  ExecExited_Reason,
  OutputLimitAction,
  type AttachResponse,
  type CommandRefSchema,
  type ExecExited,
  type ExecRequestSchema,
  type ExecResponse,
} from "./gen/sandbox/v1/sandbox_pb.js";
import { Code, errorForCode, toSandboxdError } from "./errors.js";
import { bytesOf, num, toDate, toMs } from "./private/convert.js";
import { callOptions, consume, type CallOptions, type Context } from "./private/context.js";

/** A shell command line (run with `bash -c`) or an argv (passed literally, no shell). */
export type Cmd = string | readonly string[];

/** Why a command ended. */
export type ExitReason = "exited" | "timeout" | "cancelled" | "output_limit" | "unspecified";

export interface ExecOptions extends CallOptions {
  /** Variables added to the command's environment. */
  env?: Record<string, string>;
  /** Working directory (relative to the home directory when relative). */
  cwd?: string;
  /** Written to the command's stdin, which is then closed. */
  stdin?: Uint8Array | string;
  /**
   * The command's own time limit: its process group is killed after this
   * long and it ends with reason "timeout" (not an error). Distinct from
   * `deadlineMs`, the RPC's deadline (DeadlineExceededError).
   */
  timeoutMs?: number;
  /** Per-stream output cap in bytes (0: none). */
  maxOutputBytes?: number;
  /** Past the cap: "kill" the command (default) or "discard" the rest. */
  outputLimitAction?: "kill" | "discard";
}

export interface RunOptions extends ExecOptions {
  /** Reject with CommandError unless the command exits with code 0. */
  check?: boolean;
}

/** How a command ended. */
export interface ExitInfo {
  /** The exit code when it exited normally, else null. */
  exitCode: number | null;
  /** The signal that killed it ("SIGKILL"...), else null. */
  signal: string | null;
  reason: ExitReason;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  durationMs: number;
}

export interface CommandResult extends ExitInfo {
  execId: string;
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** stdout decoded as UTF-8 (invalid sequences become U+FFFD). */
  stdoutText: string;
  stderrText: string;
}

/** One event of a running command. Offsets are byte offsets within their stream. */
export type ExecEvent =
  | { type: "started"; execId: string; pid: number }
  | { type: "stdout"; data: Uint8Array; offset: number }
  | { type: "stderr"; data: Uint8Array; offset: number }
  | ({ type: "exited" } & ExitInfo);

/** ExecEvent with the output decoded. */
export type TextEvent =
  | { type: "started"; execId: string; pid: number }
  | { type: "stdout"; text: string }
  | { type: "stderr"; text: string }
  | ({ type: "exited" } & ExitInfo);

/** A command that exited with a non-zero code, was killed, or timed out, under `check: true`. */
export class CommandError extends Error {
  readonly result: CommandResult;
  constructor(cmd: Cmd, result: CommandResult) {
    const how =
      result.exitCode !== null
        ? `exit code ${result.exitCode}`
        : `${result.reason}${result.signal ? ` (${result.signal})` : ""}`;
    const tail = result.stderrText.trim().slice(-500);
    super(`command ${JSON.stringify(cmd)} failed: ${how}${tail ? `: ${tail}` : ""}`);
    this.name = "CommandError";
    this.result = result;
  }
  get exitCode(): number | null {
    return this.result.exitCode;
  }
}

/**
 * Incremental UTF-8 decoding: a character split across chunks comes out
 * whole, once its last byte arrived.
 */
export class TextStream {
  #decoder = new TextDecoder("utf-8");
  /** Decodes a chunk; bytes of an unfinished character wait for the next one. */
  write(chunk: Uint8Array): string {
    return this.#decoder.decode(chunk, { stream: true });
  }
  /** Flushes (an unfinished character becomes U+FFFD). */
  end(): string {
    return this.#decoder.decode();
  }
}

/** Decodes a command's events: each stream through its own TextStream, flushed before `exited`. */
export async function* decodeText(events: AsyncIterable<ExecEvent>): AsyncGenerator<TextEvent> {
  const out = new TextStream();
  const err = new TextStream();
  for await (const ev of events) {
    if (ev.type === "stdout" || ev.type === "stderr") {
      const text = (ev.type === "stdout" ? out : err).write(ev.data);
      if (text) yield { type: ev.type, text };
    } else {
      if (ev.type === "exited") {
        const o = out.end();
        if (o) yield { type: "stdout", text: o };
        const e = err.end();
        if (e) yield { type: "stderr", text: e };
      }
      yield ev;
    }
  }
}

const reasons: Record<ExecExited_Reason, ExitReason> = {
  [ExecExited_Reason.UNSPECIFIED]: "unspecified",
  [ExecExited_Reason.EXITED]: "exited",
  [ExecExited_Reason.TIMEOUT]: "timeout",
  [ExecExited_Reason.CANCELLED]: "cancelled",
  [ExecExited_Reason.OUTPUT_LIMIT]: "output_limit",
};

export function exitInfo(e: ExecExited): ExitInfo {
  return {
    exitCode: e.exitCode ?? null,
    signal: e.signal || null,
    reason: reasons[e.reason] ?? "unspecified",
    stdoutTruncated: e.stdoutTruncated,
    stderrTruncated: e.stderrTruncated,
    durationMs: toMs(e.duration) ?? 0,
  };
}

function toEvent(res: ExecResponse | AttachResponse): ExecEvent | undefined {
  const ev = res.event;
  switch (ev.case) {
    case "started":
      return { type: "started", execId: ev.value.execId, pid: ev.value.pid };
    case "stdout":
    case "stderr":
      return { type: ev.case, data: ev.value, offset: num(res.offset) };
    case "exited":
      return { type: "exited", ...exitInfo(ev.value) };
    default:
      return undefined;
  }
}

function command(cmd: Cmd): MessageInitShape<typeof ExecRequestSchema>["command"] {
  if (typeof cmd === "string") return { case: "shell", value: cmd };
  if (cmd.length === 0) throw new TypeError("empty argv");
  return { case: "argv", value: { args: [...cmd] } };
}

export interface KeptOptions {
  /** Name to find it by (unique among the sandbox's running commands). */
  tag?: string;
  /** Keep stdin open for writeInput. */
  keepStdinOpen?: boolean;
  /** Output kept per stream in the sandbox (default 64 MiB). */
  retainBytes?: number;
  /** Run on a pseudo-terminal of this size (output comes as stdout only; TERM defaults to xterm-256color). */
  pty?: { rows: number; cols: number; term?: string };
}

export function execRequest(sandboxId: string, cmd: Cmd, o: ExecOptions & KeptOptions, background = false): MessageInitShape<typeof ExecRequestSchema> {
  return {
    sandboxId,
    command: command(cmd),
    ...(o.env && { env: o.env }),
    ...(o.cwd !== undefined && { cwd: o.cwd }),
    ...(o.stdin !== undefined && { stdin: bytesOf(o.stdin) }),
    ...(o.timeoutMs !== undefined && { timeout: durationFromMs(o.timeoutMs) }),
    ...(o.maxOutputBytes !== undefined && { maxOutputBytes: BigInt(o.maxOutputBytes) }),
    ...(o.outputLimitAction && {
      outputLimitAction: o.outputLimitAction === "discard" ? OutputLimitAction.DISCARD : OutputLimitAction.KILL,
    }),
    ...(background && { background: true }),
    ...(o.tag !== undefined && { tag: o.tag }),
    ...(o.keepStdinOpen && { keepStdinOpen: true }),
    ...(o.retainBytes !== undefined && { retainBytes: BigInt(o.retainBytes) }),
    ...(o.pty && { pty: { rows: o.pty.rows, cols: o.pty.cols, term: o.pty.term ?? "" } }),
  };
}

/** The events of one Exec. Leaving the loop early cancels the RPC (which kills a foreground command). */
export async function* execEvents(ctx: Context, req: MessageInitShape<typeof ExecRequestSchema>, o: CallOptions): AsyncGenerator<ExecEvent> {
  const rpc = await ctx.rpc();
  for await (const res of consume((signal) => rpc.exec(req, callOptions(ctx, o, false, signal)), o.signal)) {
    const ev = toEvent(res);
    if (ev) yield ev;
  }
}

/** Collects a command's events into a CommandResult. */
export async function collect(events: AsyncIterable<ExecEvent>, cmd: Cmd, check: boolean | undefined): Promise<CommandResult> {
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  let execId = "";
  let exited: ExitInfo | undefined;
  for await (const ev of events) {
    if (ev.type === "started") execId = ev.execId;
    else if (ev.type === "stdout") out.push(ev.data);
    else if (ev.type === "stderr") err.push(ev.data);
    else exited = ev;
  }
  if (!exited) throw errorForCode(Code.Unknown, "command stream ended without an exit event");
  const stdout = concat(out);
  const stderr = concat(err);
  const { type: _type, ...info } = exited as ExitInfo & { type?: string };
  const result: CommandResult = {
    ...info,
    execId,
    stdout,
    stderr,
    stdoutText: new TextDecoder().decode(stdout),
    stderrText: new TextDecoder().decode(stderr),
  };
  if (check && !(result.reason === "exited" && result.exitCode === 0)) throw new CommandError(cmd, result);
  return result;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Where to start reading a kept command's output. */
export interface AttachOptions extends CallOptions {
  stdoutOffset?: number;
  stderrOffset?: number;
  /** Start at the earliest kept offset instead of failing with OutOfRangeError. */
  fromEarliest?: boolean;
}

/** A kept command as ListCommands reports it. */
export interface CommandInfo {
  execId: string;
  tag: string;
  args: string[];
  startedAt: Date | undefined;
  running: boolean;
  exit: ExitInfo | undefined;
  stdoutEarliest: number;
  stdoutEnd: number;
  stderrEarliest: number;
  stderrEnd: number;
  pty: boolean;
  pid: number;
}

/**
 * A kept command (started with `sb.spawn`, or found with `sb.command`): it
 * runs in the sandbox independently of any RPC; attach to it, feed its stdin,
 * signal it.
 */
export class KeptCommand {
  constructor(
    private readonly ctx: Context,
    readonly sandboxId: string,
    /** The exec id, or "" when the handle was made from a tag only. */
    readonly execId: string,
    readonly tag: string,
    readonly pid: number,
  ) {}

  #ref(): MessageInitShape<typeof CommandRefSchema> {
    return {
      sandboxId: this.sandboxId,
      command: this.execId ? { case: "execId", value: this.execId } : { case: "tag", value: this.tag },
    };
  }

  /** Its output from the given offsets (default 0): stored output, then live, then `exited`. Leaving the loop detaches. */
  async *attach(o: AttachOptions = {}): AsyncGenerator<ExecEvent> {
    const rpc = await this.ctx.rpc();
    const req = {
      command: this.#ref(),
      stdoutOffset: BigInt(o.stdoutOffset ?? 0),
      stderrOffset: BigInt(o.stderrOffset ?? 0),
      fromEarliest: o.fromEarliest ?? false,
    };
    for await (const res of consume((signal) => rpc.attach(req, callOptions(this.ctx, o, false, signal)), o.signal)) {
      const ev = toEvent(res);
      if (ev) yield ev;
    }
  }

  /** Waits for it to end and returns all its kept output (attach from offset 0). */
  wait(o: AttachOptions & { check?: boolean } = {}): Promise<CommandResult> {
    return collect(this.attach(o), this.tag || this.execId, o.check);
  }

  /** Writes to its stdin (started with keepStdinOpen); `close` closes stdin after the data. */
  async writeInput(data: Uint8Array | string, o: CallOptions & { close?: boolean } = {}): Promise<void> {
    const rpc = await this.ctx.rpc();
    try {
      await rpc.writeInput({ command: this.#ref(), data: bytesOf(data), close: o.close ?? false }, callOptions(this.ctx, o, true));
    } catch (e) {
      throw toSandboxdError(e);
    }
  }

  /** Closes its stdin (it sees end of file). */
  closeInput(o: CallOptions = {}): Promise<void> {
    return this.writeInput(new Uint8Array(0), { ...o, close: true });
  }

  /**
   * Streams `input` to its stdin as it comes (one client stream: the fast
   * path for typing into a PTY); closes stdin at the end when `close`.
   */
  async streamInput(input: AsyncIterable<Uint8Array | string>, o: CallOptions & { close?: boolean } = {}): Promise<void> {
    const rpc = await this.ctx.rpc();
    const ref = this.#ref();
    async function* messages() {
      yield { command: ref };
      for await (const chunk of input) yield { data: bytesOf(chunk) };
      if (o.close) yield { close: true };
    }
    try {
      await rpc.streamInput(messages(), callOptions(this.ctx, o, false));
    } catch (e) {
      throw toSandboxdError(e);
    }
  }

  /** Changes its PTY's window size (the command gets SIGWINCH). */
  async resize(rows: number, cols: number, o: CallOptions = {}): Promise<void> {
    const rpc = await this.ctx.rpc();
    try {
      await rpc.resizePty({ command: this.#ref(), size: { rows, cols } }, callOptions(this.ctx, o, true));
    } catch (e) {
      throw toSandboxdError(e);
    }
  }

  /** Sends a signal ("SIGTERM", "INT"...) to its process group. */
  async signal(name: string, o: CallOptions = {}): Promise<void> {
    const rpc = await this.ctx.rpc();
    try {
      await rpc.signalCommand({ command: this.#ref(), signal: name }, callOptions(this.ctx, o, true));
    } catch (e) {
      throw toSandboxdError(e);
    }
  }
}

export function commandInfo(c: {
  execId: string;
  tag: string;
  args: string[];
  startedAt?: Parameters<typeof toDate>[0];
  running: boolean;
  exited?: ExecExited;
  stdoutEarliest: bigint;
  stdoutEnd: bigint;
  stderrEarliest: bigint;
  stderrEnd: bigint;
  pty: boolean;
  pid: number;
}): CommandInfo {
  return {
    execId: c.execId,
    tag: c.tag,
    args: [...c.args],
    startedAt: toDate(c.startedAt),
    running: c.running,
    exit: c.exited ? exitInfo(c.exited) : undefined,
    stdoutEarliest: num(c.stdoutEarliest),
    stdoutEnd: num(c.stdoutEnd),
    stderrEarliest: num(c.stderrEarliest),
    stderrEnd: num(c.stderrEnd),
    pty: c.pty,
    pid: c.pid,
  };
}

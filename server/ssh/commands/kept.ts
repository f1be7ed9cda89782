/**
 * Kept commands: commands that outlive their RPC or take input over time,
 * run and recorded inside the sandbox by sbx-run (helper.ts), so that any
 * replica, also after a restart, can list them, attach to their output from
 * any offset, write to their stdin, signal them and resize their PTY.
 */
import { randomUUID } from "node:crypto";
import { internal, invalidArgument, notFound, outOfRange } from "../../errors.js";
import type { CommandSpec } from "../command-line.js";
import type { SessionRegistry } from "../session-registry.js";
import { FrameError, FrameParser, parseExit, type KeptExit } from "./frames.js";
import { COMMANDS_DIR, helperError, helperMessage, runHelper, streamHelper } from "./helper.js";

/** Per stream, by default. */
export const DEFAULT_RETAIN_BYTES = 64 * 2 ** 20;
/** Finished commands are listed this long, then removed. */
export const KEEP_FINISHED_S = 3600;
const TAG = /^[A-Za-z0-9_.-]{1,64}$/;
/** How a `shell` command is run (no rc files, as for a plain Exec); listed as the proto documents it: ["bash", "-c", <shell>]. */
const SHELL = ["/bin/bash", "--norc", "--noprofile", "-c"];

export interface PtySpec {
  rows: number;
  cols: number;
  term: string;
}

export interface KeptStart extends CommandSpec {
  tag?: string;
  pty?: PtySpec;
  keepStdin: boolean;
  retainBytes?: number;
}

export function newExecId(): string {
  return `cmd-${randomUUID().replace(/-/g, "").slice(0, 20)}`;
}

export function checkTag(tag: string | undefined): void {
  if (tag !== undefined && tag !== "" && !TAG.test(tag)) throw invalidArgument("tag", `must match ${TAG}, got ${JSON.stringify(tag.slice(0, 80))}`);
}

/** Starts a kept command; resolves its pid once it runs. */
export async function startKept(registry: SessionRegistry, sandboxId: string, execId: string, s: KeptStart): Promise<{ pid: number }> {
  const command = s.argv && s.argv.length ? s.argv : [...SHELL, s.shell ?? ""];
  const args = [
    "start", "--dir", COMMANDS_DIR, "--id", execId,
    ...(s.tag ? ["--tag", s.tag] : []),
    ...(s.pty ? ["--pty", String(s.pty.rows), String(s.pty.cols), s.pty.term] : []),
    ...(s.keepStdin ? ["--keep-stdin"] : []),
    "--cap", String(s.retainBytes || DEFAULT_RETAIN_BYTES),
    "--", ...command,
  ];
  // cwd and env go through sandboxd's wrapper: sbx-run and the command inherit them.
  const r = await runHelper(registry, sandboxId, args, { cwd: s.cwd, env: s.env });
  if (r.exitCode !== 0) throw helperError(r, "tag");
  const pid = /^started (\d+)$/m.exec(r.stdout.toString("utf8"))?.[1];
  if (!pid) throw internal(`sbx-run start said ${JSON.stringify(r.stdout.toString("utf8").slice(0, 200))}`);
  // Finished commands older than the retention time go (best effort, off the critical path).
  void runHelper(registry, sandboxId, ["gc", "--dir", COMMANDS_DIR, "--keep-finished", String(KEEP_FINISHED_S)]).catch(() => {});
  return { pid: Number(pid) };
}

export type KeptEvent =
  | { type: "stdout" | "stderr"; offset: number; data: Buffer }
  | { type: "exited"; exit: KeptExit };

export interface AttachOptions {
  stdoutOffset: number;
  stderrOffset: number;
  fromEarliest: boolean;
  /** Kill the command when this attach ends early (its RPC, or sandboxd's SSH connection): a foreground kept command. */
  killOnHangup?: boolean;
  signal?: AbortSignal;
}

/** Replays a kept command's stored output from the offsets, then follows it live until its exit record. */
export async function* attachKept(registry: SessionRegistry, sandboxId: string, execId: string, o: AttachOptions): AsyncGenerator<KeptEvent> {
  const stream = await streamHelper(registry, sandboxId, [
    "attach", "--dir", COMMANDS_DIR, "--id", execId,
    "--stdout-offset", String(o.stdoutOffset), "--stderr-offset", String(o.stderrOffset),
    ...(o.fromEarliest ? ["--from-earliest"] : []),
    ...(o.killOnHangup ? ["--kill-on-hangup"] : []),
  ], { signal: o.signal, maxStderrBytes: 4096, onOutputLimit: "discard" });
  const parser = new FrameParser();
  let dropped: { stdoutEarliest: number; stderrEarliest: number } | undefined;
  let stderr = "";
  let ended = false;
  try {
    for await (const ev of stream) {
      if (ev.type === "stdout") {
        for (const f of parser.push(ev.data)) {
          if (f.kind === "data") yield { type: f.stream, offset: f.offset, data: f.data };
          else if (f.kind === "dropped") dropped = f;
          else if (f.kind === "exit") {
            ended = true;
            yield { type: "exited", exit: parseExit(f.exit) };
          }
          // "gap": the next data frame's offset shows the jump.
        }
      } else if (ev.type === "stderr") {
        if (stderr.length < 4096) stderr += ev.data.toString("utf8");
      } else if (ev.type === "exited") {
        if (ended || ev.reason === "cancelled") return;
        if (ev.exitCode === 3 && dropped) {
          throw outOfRange(`output before stdout offset ${dropped.stdoutEarliest} / stderr offset ${dropped.stderrEarliest} is no longer kept (retention); attach from there, or with from_earliest`);
        }
        throw helperError({ exitCode: ev.exitCode, stderr: Buffer.from(stderr) });
      }
    }
  } catch (err) {
    if (err instanceof FrameError) throw internal(`sbx-run attach: ${err.message}`);
    throw err;
  }
}

/** Writes bytes (from one buffer or a stream) to a kept command's stdin, then closes it if asked. */
export async function writeKeptInput(registry: SessionRegistry, sandboxId: string, execId: string, data: Uint8Array | AsyncIterable<Uint8Array>, close: boolean, signal?: AbortSignal): Promise<void> {
  const r = await runHelper(registry, sandboxId, ["input", "--dir", COMMANDS_DIR, "--id", execId, ...(close ? ["--close"] : [])], { stdin: data, signal });
  if (r.exitCode !== 0) throw helperError(r);
}

export async function signalKept(registry: SessionRegistry, sandboxId: string, execId: string, signalName: string): Promise<void> {
  const r = await runHelper(registry, sandboxId, ["signal", "--dir", COMMANDS_DIR, "--id", execId, "--signal", signalName]);
  if (r.exitCode !== 0) throw helperError(r, "signal");
}

export async function resizeKept(registry: SessionRegistry, sandboxId: string, execId: string, rows: number, cols: number): Promise<void> {
  const r = await runHelper(registry, sandboxId, ["resize", "--dir", COMMANDS_DIR, "--id", execId, "--rows", String(rows), "--cols", String(cols)]);
  if (r.exitCode !== 0) throw helperError(r, "size");
}

export interface KeptInfo {
  execId: string;
  tag: string;
  args: string[];
  startedAt: Date;
  running: boolean;
  exit?: KeptExit;
  stdout: { earliest: number; end: number };
  stderr: { earliest: number; end: number };
  pty: boolean;
  pid: number;
}

const num = (v: unknown) => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : 0);
const range = (v: unknown) => ({ earliest: num((v as Record<string, unknown> | undefined)?.earliest), end: num((v as Record<string, unknown> | undefined)?.end) });

/** The command line as ListCommands shows it: argv as given, a shell command as ["bash", "-c", <shell>]. */
function shownArgs(argv: string[]): string[] {
  const isShell = argv.length === SHELL.length + 1 && SHELL.every((a, i) => argv[i] === a);
  return isShell ? ["bash", "-c", argv[SHELL.length]!] : argv;
}

/** The sandbox's kept commands, newest first (from `sbx-run list`, one JSON object a line; malformed lines are skipped). */
export async function listKept(registry: SessionRegistry, sandboxId: string): Promise<KeptInfo[]> {
  const r = await runHelper(registry, sandboxId, ["list", "--dir", COMMANDS_DIR]);
  if (r.exitCode !== 0) throw internal(`sbx-run list: ${helperMessage(r)}`);
  const out: KeptInfo[] = [];
  for (const line of r.stdout.toString("utf8").split("\n")) {
    if (!line.trim()) continue;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (typeof o.id !== "string") continue;
    const running = o.state === "running";
    out.push({
      execId: o.id, tag: typeof o.tag === "string" ? o.tag : "",
      args: Array.isArray(o.argv) ? shownArgs(o.argv.filter((a): a is string => typeof a === "string").slice(0, 1000)) : [],
      startedAt: new Date(num(o.startedAt)), running,
      ...(running ? {} : { exit: parseExit(o.exit ?? { lost: true }) }),
      stdout: range(o.stdout), stderr: range(o.stderr), pty: o.pty === true, pid: num(o.pid),
    });
  }
  // Finished ones are listed for KEEP_FINISHED_S (the helper's gc removes them when a command starts).
  const cutoff = Date.now() - KEEP_FINISHED_S * 1000;
  return out
    .filter((c) => c.running || c.startedAt.getTime() + (c.exit?.durationMs ?? 0) >= cutoff)
    .sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime());
}

/** The exec id a tag names: the running command with that tag, else the newest finished one. */
export async function resolveTag(registry: SessionRegistry, sandboxId: string, tag: string): Promise<string> {
  const all = (await listKept(registry, sandboxId)).filter((c) => c.tag === tag);
  const found = all.find((c) => c.running) ?? all[0];
  if (!found) throw notFound(`no command tagged ${JSON.stringify(tag)} in sandbox ${sandboxId}`);
  return found.execId;
}

/**
 * Exec of a kept command (`background`, `keep_stdin_open`, `pty` or a `tag`):
 * sbx-run starts it inside the sandbox and this RPC attaches to it from offset
 * 0. A background command outlives the RPC (cancelling detaches); any other
 * kept command is killed when the RPC ends early, like a plain Exec.
 */
import { ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ExecRequest, ExecResponseSchema } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { invalidArgument } from "../../errors.js";
import { attachKept, checkTag, DEFAULT_RETAIN_BYTES, newExecId, signalKept, startKept, writeKeptInput } from "../../ssh/commands/kept.js";
import { useSandbox } from "../access.js";
import { requireSandboxId, u64 } from "../convert.js";
import type { ApiDeps } from "../deps.js";
import { noteSandbox } from "../rpc-log.js";
import { keptResponses } from "./events.js";
import { ptySize } from "./pty.js";

const MIN_RETAIN = 64 * 1024;
const MAX_RETAIN = 2 ** 30;

export function isKept(req: ExecRequest): boolean {
  return req.background || req.keepStdinOpen || req.pty !== undefined || req.tag !== "";
}

export async function* keptExec(deps: ApiDeps, req: ExecRequest, ctx: HandlerContext): AsyncGenerator<MessageInitShape<typeof ExecResponseSchema>> {
  const id = requireSandboxId(req.sandboxId);
  noteSandbox(ctx, id);
  if (req.timeout) throw invalidArgument("timeout", "not for background, PTY or kept-stdin commands: use SignalCommand, or a plain Exec");
  if (req.maxOutputBytes) throw invalidArgument("max_output_bytes", "not for background, PTY or kept-stdin commands: see retain_bytes");
  checkTag(req.tag);
  const retain = u64(req.retainBytes, "retain_bytes") || DEFAULT_RETAIN_BYTES;
  if (retain < MIN_RETAIN || retain > MAX_RETAIN) throw invalidArgument("retain_bytes", `must be ${MIN_RETAIN}-${MAX_RETAIN} (0: ${DEFAULT_RETAIN_BYTES})`);
  const command = req.command.case === "argv" ? { argv: req.command.value.args } : req.command.case === "shell" ? { shell: req.command.value } : undefined;
  if (!command || (command.argv && command.argv.length === 0) || command.shell === "") throw invalidArgument("command", "set argv or shell");
  const pty = req.pty ? ptySize(req.pty, "pty") : undefined;
  const release = await useSandbox(deps, ctx, id);
  ctx.signal.addEventListener("abort", release, { once: true });
  const execId = newExecId();
  let started = false;
  try {
    const { pid } = await startKept(deps.registry, id, execId, {
      ...command, env: { ...req.env }, cwd: req.cwd, tag: req.tag || undefined, pty,
      keepStdin: req.keepStdinOpen || req.stdin.length > 0, retainBytes: retain,
    });
    started = true;
    if (req.stdin.length > 0) await writeKeptInput(deps.registry, id, execId, req.stdin, !req.keepStdinOpen, ctx.signal);
    yield { event: { case: "started", value: { execId, pid } } };
    const events = attachKept(deps.registry, id, execId, { stdoutOffset: 0, stderrOffset: 0, fromEarliest: true, killOnHangup: !req.background, signal: ctx.signal });
    yield* keptResponses(events, ctx);
  } catch (err) {
    if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason);
    throw err;
  } finally {
    // A foreground kept command dies with its RPC: killed from here when the RPC ends early (the attach
    // itself is killed then), and by its attach on hang-up when sandboxd's connection dies. A background one is detached from.
    if (started && !req.background && ctx.signal.aborted) void signalKept(deps.registry, id, execId, "SIGKILL").catch(() => {});
    release();
  }
}

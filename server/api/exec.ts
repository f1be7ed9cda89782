/**
 * Exec: streams a command's events. The RPC's signal (client cancel, RPC
 * deadline, shutdown) kills the process group; the command `timeout` is the
 * ssh layer's and ends with REASON_TIMEOUT in the exited event. When the RPC
 * itself was aborted, the stream ends with that status (DEADLINE_EXCEEDED for a
 * passed deadline) instead of an exited event.
 */
import { randomUUID } from "node:crypto";
import { ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ExecExited_Reason, OutputLimitAction, type ExecRequest, type ExecResponseSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { invalidArgument } from "../errors.js";
import { exec, type ExecOptions, type ExitReason } from "../ssh/index.js";
import { durationToMs, msToDuration, requireSandboxId, u64 } from "./convert.js";
import type { ApiDeps } from "./deps.js";
import { noteSandbox, phaseStamps } from "./rpc-log.js";
import { ssh } from "../telemetry/metrics.js";
import { useSandbox } from "./access.js";
import { isKept, keptExec } from "./commands/kept-exec.js";

type ExecEventInit = MessageInitShape<typeof ExecResponseSchema>;

const REASONS: Record<ExitReason, ExecExited_Reason> = {
  exited: ExecExited_Reason.EXITED,
  timeout: ExecExited_Reason.TIMEOUT,
  cancelled: ExecExited_Reason.CANCELLED,
  output_limit: ExecExited_Reason.OUTPUT_LIMIT,
};

/** How a command ended, for metrics: its exit reason, with "exited" split by status. */
function exitReason(ev: { reason: ExitReason; exitCode: number | null; signal: string | null }): string {
  if (ev.reason !== "exited") return ev.reason;
  if (ev.signal) return "signaled";
  return ev.exitCode === 0 ? "exit_zero" : "exit_nonzero";
}

function outputLimitAction(action: OutputLimitAction): ExecOptions["onOutputLimit"] {
  switch (action) {
    case OutputLimitAction.UNSPECIFIED:
    case OutputLimitAction.KILL:
      return "kill";
    case OutputLimitAction.DISCARD:
      return "discard";
    default:
      throw invalidArgument("output_limit_action", `unknown value ${action}`);
  }
}

function execOptions(req: ExecRequest): ExecOptions {
  const cap = u64(req.maxOutputBytes, "max_output_bytes") || undefined;
  const common = {
    env: { ...req.env },
    cwd: req.cwd,
    stdin: req.stdin.length > 0 ? req.stdin : undefined,
    timeoutMs: durationToMs(req.timeout, "timeout"),
    maxStdoutBytes: cap,
    maxStderrBytes: cap,
    onOutputLimit: outputLimitAction(req.outputLimitAction),
  };
  switch (req.command.case) {
    case "argv":
      if (req.command.value.args.length === 0) throw invalidArgument("argv", "must name a program");
      return { ...common, argv: req.command.value.args };
    case "shell":
      return { ...common, shell: req.command.value };
    default:
      throw invalidArgument("command", "set argv or shell");
  }
}

export async function* execCommand(deps: ApiDeps, req: ExecRequest, ctx: HandlerContext): AsyncGenerator<ExecEventInit> {
  if (isKept(req)) {
    yield* keptExec(deps, req, ctx);
    return;
  }
  const phases = phaseStamps(ctx, performance.now());
  const id = requireSandboxId(req.sandboxId);
  noteSandbox(ctx, id);
  const options = execOptions(req);
  const release = await useSandbox(deps, ctx, id);
  if (phases) phases.pinned = performance.now();
  // Unpin from the abort listener too: a generator stalled at `yield` may never reach `finally`.
  ctx.signal.addEventListener("abort", release, { once: true });
  try {
    const execId = randomUUID();
    const offsets = { stdout: 0, stderr: 0 };
    for await (const ev of exec(deps.registry, id, { ...options, signal: ctx.signal, phases })) {
      switch (ev.type) {
        case "started":
          yield { event: { case: "started", value: { execId, pid: ev.pid } } };
          break;
        case "stdout":
        case "stderr":
          yield { offset: BigInt(offsets[ev.type]), event: { case: ev.type, value: ev.data } };
          offsets[ev.type] += ev.data.length;
          break;
        case "exited":
          ssh.execSeconds.observe({ exit_reason: exitReason(ev) }, ev.durationMs / 1000);
          if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason);
          if (phases) phases.exitedSent = performance.now();
          yield {
            event: {
              case: "exited",
              value: {
                reason: REASONS[ev.reason],
                exitCode: ev.exitCode ?? undefined,
                signal: ev.signal ?? "",
                stdoutTruncated: ev.stdoutTruncated,
                stderrTruncated: ev.stderrTruncated,
                duration: msToDuration(ev.durationMs),
              },
            },
          };
      }
    }
  } catch (err) {
    // The ssh layer reports an aborted RPC as "cancelled"; the RPC's own reason (deadline, shutdown) is the truer status.
    if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason);
    throw err;
  } finally {
    release();
  }
}

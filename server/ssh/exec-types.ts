/** The exec API's options and events (what the gRPC Exec stream will carry). */
import type { CommandSpec } from "./command-line.js";

export interface ExecOptions extends CommandSpec {
  /** Bytes written to stdin, then EOF. Without it stdin is closed at once. */
  stdin?: Uint8Array | AsyncIterable<Uint8Array>;
  /** Kills the command's process group after this long (from its start). 0 = none. */
  timeoutMs?: number;
  /** At most this many bytes per stream are delivered; the stream that went past it is flagged truncated. */
  maxStdoutBytes?: number;
  maxStderrBytes?: number;
  /**
   * What going past a cap does: "kill" (the default) kills the process group
   * and ends with reason "output_limit"; "discard" drops (and drains) the rest
   * and lets the command run.
   */
  onOutputLimit?: "kill" | "discard";
  /** Aborting kills the command's process group; the stream ends with reason "cancelled" (throws cancelled if it had not started). */
  signal?: AbortSignal;
  /** Buffered output (bytes) above which the SSH window closes. Default 1 MiB. */
  highWaterMark?: number;
  /** Filled with performance.now() stamps as the exec goes (the Exec RPC's phase breakdown). */
  phases?: ExecPhases;
}

/** When each step of an exec happened (performance.now()); a step that did not happen stays unset. */
export interface ExecPhases {
  /** The SSH channel is open (slot acquired, CHANNEL_OPEN and exec request answered). */
  channelOpen?: number;
  /** The wrapper's header arrived: the command runs. */
  header?: number;
  /** The command's first output byte (stdout or stderr). */
  firstOutput?: number;
  /** exit-status arrived. */
  exitStatus?: number;
  /** The channel closed. */
  closed?: number;
}

export type ExitReason = "exited" | "timeout" | "cancelled" | "output_limit";

export interface ExitedEvent {
  type: "exited";
  /** null when ended by a signal (or when the exit was never reported). */
  exitCode: number | null;
  /** e.g. "SIGKILL" (ssh2's naming), null for a normal exit. */
  signal: string | null;
  reason: ExitReason;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  durationMs: number;
}

export type ExecEvent =
  | { type: "started"; pid: number }
  | { type: "stdout"; data: Buffer }
  | { type: "stderr"; data: Buffer }
  | ExitedEvent;

export interface ExecStream extends AsyncIterableIterator<ExecEvent> {
  /** Kills the command; events continue until the "exited" event (reason cancelled), or throw cancelled if it had not started. */
  cancel(): void;
}

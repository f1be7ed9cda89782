/**
 * Runs one command in a sandbox and streams its events: started, stdout and
 * stderr chunks (raw bytes, arrival order), exited. See command-line.ts for
 * the wrapper that makes the command a process-group leader; timeout and
 * cancellation kill that whole group from a second (control) channel.
 *
 * Until the wrapper's header (with this exec's nonce) arrives, nothing is
 * trusted and little is kept: stdout up to MAX_HEADER_BYTES, stderr up to
 * MAX_PRE_HEADER_STDERR; past either the exec fails and its channel is
 * closed. A channel that ends without a valid header is an error, never an
 * "exited".
 */
import type { ClientChannel } from "ssh2";
import { cancelled, deadlineExceeded, failedPrecondition, internal, invalidArgument, permissionDenied, unavailable } from "../errors.js";
import type { ChannelOutput, OutputStream } from "./channel-output.js";
import { buildWrapper, killGroupCommand, MAX_HEADER_BYTES, parseHeader, type Wrapper } from "./command-line.js";
import { EventQueue } from "./event-queue.js";

/**
 * Output chunks handed to the consumer are at most this big (well under gRPC's
 * usual 4 MiB message limit). Just under 256 KiB so that an ExecResponse with
 * its few bytes of framing still fits a 256 KiB buffer: protobuf-es grows its
 * writer by doubling, and 256 KiB of data plus a tag would take (and zero) 512 KiB.
 */
export const MAX_OUTPUT_CHUNK = 256 * 1024 - 64;
/**
 * stderr held before the header (sshd's or the shell's complaints, delivered
 * once the command started). Fixed: the sandbox must not size our buffers.
 */
export const MAX_PRE_HEADER_STDERR = 64 * 1024;
import type { ExecEvent, ExecOptions, ExecStream, ExitReason } from "./exec-types.js";
import type { SessionRegistry } from "./session-registry.js";
import { feedStdin } from "./stdin.js";

/** How long after exit-status we wait for the channel to close (children holding stdout). */
const EXIT_GRACE_MS = 2_000;
/** How long after a kill we wait for the channel before forcing it closed. */
const KILL_GRACE_MS = 5_000;

/**
 * Validates at once (invalid_argument is thrown here); runs the command when
 * iteration starts. Breaking out of the iteration kills the command.
 */
export function exec(registry: SessionRegistry, sandboxId: string, options: ExecOptions): ExecStream {
  const wrapper = buildWrapper(options);
  for (const f of ["timeoutMs", "maxStdoutBytes", "maxStderrBytes", "highWaterMark"] as const) {
    const v = options[f];
    if (v !== undefined && (!Number.isFinite(v) || v < 0)) throw invalidArgument(f, "must be a non-negative number");
  }
  if (options.onOutputLimit !== undefined && options.onOutputLimit !== "kill" && options.onOutputLimit !== "discard") {
    throw invalidArgument("onOutputLimit", 'must be "kill" or "discard"');
  }
  return new Execution(registry, sandboxId, wrapper, options);
}

class Execution implements ExecStream {
  private readonly queue: EventQueue<ExecEvent>;
  private begun = false;
  private finished = false;
  private channel?: ClientChannel;
  private output?: ChannelOutput;
  private header: Buffer[] = [];
  private headerBytes = 0;
  private headerDone = false;
  private preHeaderStderr: Buffer[] = [];
  private preHeaderStderrBytes = 0;
  /** failStart ran: the exec has failed, everything that still arrives is dropped. */
  private failed = false;
  private pgid?: number;
  private cwdError?: string;
  private exit?: { code: number | null; signal: string | null };
  private reason: ExitReason = "exited";
  private killRequested = false;
  private killSent = false;
  private discard = false;
  private readonly sent = { stdout: 0, stderr: 0 };
  private readonly truncated = { stdout: false, stderr: false };
  private t0 = 0;
  private readonly gaveUp = new AbortController();
  private timers: NodeJS.Timeout[] = [];
  private closed!: Promise<void>;
  private onClosed!: () => void;

  constructor(
    private readonly registry: SessionRegistry,
    private readonly sandboxId: string,
    private readonly wrapper: Wrapper,
    private readonly options: ExecOptions,
  ) {
    this.closed = new Promise((r) => (this.onClosed = r));
    this.queue = new EventQueue<ExecEvent>({
      highWaterMark: options.highWaterMark ?? 1024 * 1024,
      size: (e) => (e.type === "stdout" || e.type === "stderr" ? e.data.length : 0),
      onHigh: () => this.output?.pause(),
      onLow: () => this.output?.resume(),
      mergeable: (a, b) => a.type === b.type && (a.type === "stdout" || a.type === "stderr"),
      merge: (events) => ({ type: events[0]!.type as "stdout", data: Buffer.concat(events.map((e) => (e as { data: Buffer }).data)) }),
      maxMergedSize: MAX_OUTPUT_CHUNK,
    });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ExecEvent>> {
    if (!this.begun) {
      this.begun = true;
      void this.start();
    }
    return this.queue.next();
  }

  async return(): Promise<IteratorResult<ExecEvent>> {
    // The consumer is gone: nobody wants more output, but the command must not outlive us.
    this.discard = true;
    this.queue.clear();
    this.queue.end();
    this.output?.resume();
    if (!this.begun) {
      this.begun = true;
      this.finished = true;
      this.onClosed();
    } else if (!this.finished) {
      if (this.exit) this.channel?.close();
      else this.requestKill("cancelled");
      await this.closed;
    }
    return { value: undefined, done: true };
  }

  async throw(err?: unknown): Promise<IteratorResult<ExecEvent>> {
    await this.return();
    throw err;
  }

  cancel(): void {
    this.requestKill("cancelled");
  }

  private readonly onAbort = () => this.requestKill("cancelled");

  private async start(): Promise<void> {
    const { signal } = this.options;
    signal?.addEventListener("abort", this.onAbort, { once: true });
    let output: ChannelOutput;
    try {
      if (signal?.aborted) throw cancelled("exec cancelled before the command started");
      // return()/cancel() before the channel opened must not wait for a queued slot.
      const opening = AbortSignal.any([this.gaveUp.signal, ...(signal ? [signal] : [])]);
      output = (await this.registry.openExec(this.sandboxId, this.wrapper.command, { signal: opening })).value;
    } catch (err) {
      this.finish(this.gaveUp.signal.aborted || signal?.aborted ? cancelled("exec cancelled before the command started") : err);
      return;
    }
    const channel = (this.channel = output.channel);
    this.output = output;
    this.t0 = performance.now();
    if (this.options.phases) this.options.phases.channelOpen = this.t0;
    if (this.finished) {
      output.discard(); // return() ran while the channel was opening
      channel.close();
      return;
    }
    channel.on("close", () => this.finish());
    output.attach({ data: (stream, data) => this.onData(stream, data), exit: (code, sig) => this.onExit(code, sig) });
    channel.on("error", () => {}); // surfaces as close without exit
    if (this.options.timeoutMs) this.later(this.options.timeoutMs, () => this.requestKill("timeout"));
    feedStdin(channel, this.options.stdin).catch((err) => {
      // A failing stdin source ends the command rather than leaving it waiting for input.
      this.requestKill("cancelled");
      this.queue.fail(err);
    });
  }

  private onData(stream: OutputStream, data: Buffer): void {
    if (this.failed) return;
    if (this.headerDone) return this.deliver(stream, data);
    if (stream === "stderr") {
      this.preHeaderStderrBytes += data.length;
      if (this.preHeaderStderrBytes > MAX_PRE_HEADER_STDERR) {
        return this.failStart(internal(`sandbox ${this.sandboxId}: more than ${MAX_PRE_HEADER_STDERR} bytes on stderr before the command started; exec aborted`));
      }
      this.preHeaderStderr.push(data);
      return;
    }
    // Only the bytes before the first newline are held, at most MAX_HEADER_BYTES of them.
    const nl = data.indexOf(10);
    const lineBytes = this.headerBytes + (nl < 0 ? data.length : nl);
    if (lineBytes > MAX_HEADER_BYTES) {
      return this.failStart(internal(`sandbox ${this.sandboxId}: the command wrapper printed no header (over ${MAX_HEADER_BYTES} bytes without one)`));
    }
    if (nl < 0) {
      this.header.push(data);
      this.headerBytes += data.length;
      return;
    }
    this.header.push(data.subarray(0, nl));
    const line = Buffer.concat(this.header).toString("latin1");
    this.header = [];
    this.headerDone = true;
    let head;
    try {
      head = parseHeader(line, this.wrapper.nonce);
    } catch (err) {
      return this.failStart(err);
    }
    if (head.kind !== "started") {
      this.cwdError = head.kind;
      return;
    }
    this.pgid = head.pid;
    if (this.options.phases) this.options.phases.header = performance.now();
    this.queue.push({ type: "started", pid: head.pid });
    for (const chunk of this.preHeaderStderr.splice(0)) this.deliver("stderr", chunk);
    if (nl + 1 < data.length) this.deliver("stdout", data.subarray(nl + 1));
    if (this.killRequested) this.sendKill();
  }

  private deliver(stream: OutputStream, data: Buffer): void {
    if (this.discard || this.cwdError) return;
    const cap = stream === "stdout" ? this.options.maxStdoutBytes : this.options.maxStderrBytes;
    if (cap !== undefined) {
      const room = cap - this.sent[stream];
      if (data.length > room) {
        this.truncated[stream] = true;
        data = data.subarray(0, Math.max(0, room));
        // Like `cmd | head -c N`: a runaway command is ended, not left burning CPU into a void.
        if ((this.options.onOutputLimit ?? "kill") === "kill") this.requestKill("output_limit");
      }
    }
    if (data.length === 0) return;
    if (this.options.phases && this.options.phases.firstOutput === undefined) this.options.phases.firstOutput = performance.now();
    this.sent[stream] += data.length;
    this.queue.push({ type: stream, data });
  }

  private onExit(code: number | null, signal: string | null): void {
    this.exit = { code, signal };
    if (this.options.phases) this.options.phases.exitStatus = performance.now();
    // Children that kept stdout open would hold the channel: stop waiting after a grace.
    const grace = () => {
      if (this.finished) return;
      if (this.queue.buffered > 0 && !this.discard) this.later(EXIT_GRACE_MS, grace);
      else this.channel?.close();
    };
    this.later(EXIT_GRACE_MS, grace);
  }

  private requestKill(reason: "timeout" | "cancelled" | "output_limit"): void {
    if (reason === "cancelled") {
      this.discard = true;
      this.queue.clear();
      this.output?.resume();
    }
    if (this.finished || this.exit || this.killRequested) return;
    this.killRequested = true;
    this.reason = reason;
    if (!this.channel) {
      if (reason === "cancelled") this.gaveUp.abort(); // stop waiting for a channel
      return;
    }
    if (this.pgid !== undefined) this.sendKill();
    this.later(KILL_GRACE_MS, () => this.channel?.close());
  }

  private sendKill(): void {
    if (this.killSent || this.pgid === undefined) return;
    this.killSent = true;
    this.registry
      .openExec(this.sandboxId, killGroupCommand(this.pgid), { control: true })
      .then(({ value }) => {
        value.discard();
        value.channel.end();
      })
      .catch(() => {
        /* KILL_GRACE_MS closes our channel regardless */
      });
  }

  /**
   * The exec failed before its command started (no valid header). Closing the
   * channel makes sshd close the session's pipes, so a process still writing
   * there dies of SIGPIPE; there is no trusted pid to kill.
   */
  private failStart(err: unknown): void {
    this.failed = true;
    this.discard = true;
    this.header = [];
    this.preHeaderStderr = [];
    this.queue.fail(err);
    this.output?.resume();
    this.channel?.close();
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(fn, ms);
    this.timers.push(t);
  }

  private finish(err?: unknown): void {
    if (this.finished) return;
    this.finished = true;
    if (this.options.phases) this.options.phases.closed = performance.now();
    for (const t of this.timers) clearTimeout(t);
    this.options.signal?.removeEventListener("abort", this.onAbort);
    this.onClosed();
    if (err !== undefined) return this.queue.fail(err);
    if (this.failed) return;
    if (this.cwdError && !this.killRequested) return this.queue.fail(cwdFailure(this.cwdError, this.options.cwd ?? ""));
    if (!this.headerDone) return this.queue.fail(this.noHeader());
    if (!this.exit && !this.killRequested) {
      // The connection died under the command: it keeps running in the sandbox, so kill it.
      if (this.pgid !== undefined) this.sendKill();
      return this.queue.fail(unavailable(`sandbox ${this.sandboxId}: connection lost while the command ran`));
    }
    this.queue.push({
      type: "exited",
      exitCode: this.exit?.code ?? null,
      signal: this.exit?.signal ?? null,
      reason: this.reason,
      stdoutTruncated: this.truncated.stdout,
      stderrTruncated: this.truncated.stderr,
      durationMs: Math.round((performance.now() - this.t0) * 1000) / 1000,
    });
    this.queue.end();
  }

  /** Why the channel ended before a valid header: never an "exited" without "started". */
  private noHeader() {
    if (this.killRequested && this.reason === "cancelled") return cancelled("exec cancelled before the command started");
    if (this.killRequested && this.reason === "timeout") {
      return deadlineExceeded(`sandbox ${this.sandboxId}: the command did not start within its ${this.options.timeoutMs} ms timeout`);
    }
    if (!this.exit) return unavailable(`sandbox ${this.sandboxId}: the session ended before the command started`);
    const how = this.exit.signal ? `killed by ${this.exit.signal}` : `exit ${this.exit.code}`;
    return internal(`sandbox ${this.sandboxId}: the session ended (${how}) before sandboxd's command wrapper reported the command started`);
  }
}

function cwdFailure(kind: string, cwd: string) {
  if (kind === "cwd-denied") return permissionDenied(`cwd ${JSON.stringify(cwd)}: permission denied`);
  if (kind === "cwd-notdir") return failedPrecondition(`cwd ${JSON.stringify(cwd)} is not a directory`);
  return failedPrecondition(`cwd ${JSON.stringify(cwd)} does not exist`);
}

/**
 * Runs one command in a sandbox and streams its events: started, stdout and
 * stderr chunks (raw bytes, arrival order), exited. See command-line.ts for
 * the wrapper that makes the command a process-group leader; timeout and
 * cancellation kill that whole group from a second (control) channel.
 */
import type { ClientChannel } from "ssh2";
import { cancelled, failedPrecondition, internal, invalidArgument, permissionDenied, unavailable } from "../errors.js";
import type { ChannelOutput, OutputStream } from "./channel-output.js";
import { buildWrapper, killGroupCommand, parseHeader } from "./command-line.js";
import { EventQueue } from "./event-queue.js";

/** Output chunks handed to the consumer are at most this big (well under gRPC's usual 4 MiB message limit). */
export const MAX_OUTPUT_CHUNK = 256 * 1024;
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
  private headerDone = false;
  private preHeaderStderr: Buffer[] = [];
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
    private readonly wrapper: string,
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
      output = (await this.registry.openExec(this.sandboxId, this.wrapper, { signal: opening })).value;
    } catch (err) {
      this.finish(this.gaveUp.signal.aborted || signal?.aborted ? cancelled("exec cancelled before the command started") : err);
      return;
    }
    const channel = (this.channel = output.channel);
    this.output = output;
    this.t0 = performance.now();
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
    if (!this.headerDone) {
      if (stream === "stderr") return void this.preHeaderStderr.push(data);
      this.header.push(data);
      const all = Buffer.concat(this.header);
      const nl = all.indexOf(10);
      if (nl < 0) {
        if (all.length > 256) this.failStart(internal("command wrapper printed no header"));
        return;
      }
      this.headerDone = true;
      this.header = [];
      let head;
      try {
        head = parseHeader(all.subarray(0, nl).toString("latin1"));
      } catch (err) {
        return this.failStart(err);
      }
      if (head.kind !== "started") {
        this.cwdError = head.kind;
        return;
      }
      this.pgid = head.pid;
      this.queue.push({ type: "started", pid: head.pid });
      for (const chunk of this.preHeaderStderr.splice(0)) this.deliver("stderr", chunk);
      if (nl + 1 < all.length) this.deliver("stdout", all.subarray(nl + 1));
      if (this.killRequested) this.sendKill();
      return;
    }
    this.deliver(stream, data);
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
    this.sent[stream] += data.length;
    this.queue.push({ type: stream, data });
  }

  private onExit(code: number | null, signal: string | null): void {
    this.exit = { code, signal };
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

  private failStart(err: unknown): void {
    this.queue.fail(err);
    this.discard = true;
    this.channel?.close();
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(fn, ms);
    this.timers.push(t);
  }

  private finish(err?: unknown): void {
    if (this.finished) return;
    this.finished = true;
    for (const t of this.timers) clearTimeout(t);
    this.options.signal?.removeEventListener("abort", this.onAbort);
    this.onClosed();
    if (err !== undefined) return this.queue.fail(err);
    if (this.cwdError && !this.killRequested) return this.queue.fail(cwdFailure(this.cwdError, this.options.cwd ?? ""));
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
}

function cwdFailure(kind: string, cwd: string) {
  if (kind === "cwd-denied") return permissionDenied(`cwd ${JSON.stringify(cwd)}: permission denied`);
  if (kind === "cwd-notdir") return failedPrecondition(`cwd ${JSON.stringify(cwd)} is not a directory`);
  return failedPrecondition(`cwd ${JSON.stringify(cwd)} does not exist`);
}

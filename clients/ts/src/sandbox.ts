/**
 * A sandbox handle: its lease renewed in the background while it is open,
 * destroyed by `close()` / `await using`, and every call on it.
 */
import "./private/polyfill.js";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Sandbox_State, type Sandbox as PbSandbox } from "./gen/sandbox/v1/sandbox_pb.js";
import {
  collect,
  commandInfo,
  decodeText,
  execEvents,
  execRequest,
  KeptCommand,
  type Cmd,
  type CommandInfo,
  type CommandResult,
  type ExecEvent,
  type ExecOptions,
  type KeptOptions,
  type RunOptions,
  type TextEvent,
} from "./commands.js";
import { Code, FailedPreconditionError, NotFoundError, errorForCode, toSandboxdError } from "./errors.js";
import {
  downloadArchive,
  downloadTo,
  readFile,
  upload,
  uploadArchive,
  type DownloadArchiveOptions,
  type DownloadArchiveResult,
  type DownloadDest,
  type DownloadOptions,
  type DownloadResult,
  type UploadArchiveOptions,
  type UploadArchiveResult,
  type UploadOptions,
  type UploadResult,
  type UploadSource,
} from "./files.js";
import { listDir, makeDir, move, remove, stat, watch, type FileInfo, type Watcher } from "./fs.js";
import { toDate } from "./private/convert.js";
import { callOptions, type CallOptions, type Context } from "./private/context.js";
import { MemorySink, openSink } from "./private/io.js";
import { withRetry } from "./private/retry.js";

export type SandboxState = "creating" | "running" | "destroying" | "stopped" | "unspecified";

/** What the server says about a sandbox. */
export interface SandboxInfo {
  id: string;
  state: SandboxState;
  labels: Record<string, string>;
  resources: { cores: number; memoryMib: number; diskGib: number };
  internetAccess: boolean;
  leaseExpiresAt: Date | undefined;
  createdAt: Date | undefined;
  provider: string;
  egressAllowlist: string[];
  tenant: string;
}

const states: Record<Sandbox_State, SandboxState> = {
  [Sandbox_State.UNSPECIFIED]: "unspecified",
  [Sandbox_State.CREATING]: "creating",
  [Sandbox_State.RUNNING]: "running",
  [Sandbox_State.DESTROYING]: "destroying",
  [Sandbox_State.STOPPED]: "stopped",
};

export function sandboxInfo(s: PbSandbox): SandboxInfo {
  return {
    id: s.id,
    state: states[s.state] ?? "unspecified",
    labels: { ...s.labels },
    resources: { cores: s.resources?.cores ?? 0, memoryMib: s.resources?.memoryMib ?? 0, diskGib: s.resources?.diskGib ?? 0 },
    internetAccess: s.internetAccess,
    leaseExpiresAt: toDate(s.leaseExpiresAt),
    createdAt: toDate(s.createdAt),
    provider: s.provider,
    egressAllowlist: [...s.egressAllowlist],
    tenant: s.tenant,
  };
}

export interface LeaseOptions {
  /**
   * Renew the lease in the background every TTL/3 while the handle is open
   * (default true for `create`, false for `get`).
   */
  keepAlive?: boolean;
  /** Lease TTL for renewals (default: the sandbox's current TTL). */
  ttlMs?: number;
  /**
   * Called when a renewal failed (after retrying within its interval). The
   * error is also thrown by the next call on the sandbox; renewal goes on at
   * the next tick unless the lease is gone (NotFound, FailedPrecondition).
   */
  onLeaseError?: (err: unknown) => void;
}

/** Smallest renewal interval. */
const MIN_INTERVAL_MS = 200;

export class Sandbox {
  readonly id: string;
  /** What the server said about it last (create, get, refresh). */
  info: SandboxInfo;
  #ctx: Context;
  #ttlMs: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #renewing = false;
  #leaseError: unknown;
  #onLeaseError: ((err: unknown) => void) | undefined;
  #leaseExpiresAt: Date | undefined;
  #closed = false;

  /** @internal Made by SandboxdClient. */
  constructor(ctx: Context, info: SandboxInfo, o: LeaseOptions) {
    this.#ctx = ctx;
    this.id = info.id;
    this.info = info;
    this.#ttlMs = o.ttlMs;
    this.#onLeaseError = o.onLeaseError;
    this.#leaseExpiresAt = info.leaseExpiresAt;
    if (o.keepAlive) {
      this.#renewing = true;
      this.#schedule();
    }
  }

  /** When the lease runs out, as of the last renewal (or create/get). */
  get leaseExpiresAt(): Date | undefined {
    return this.#leaseExpiresAt;
  }

  /** Whether the lease is being renewed in the background. */
  get renewing(): boolean {
    return this.#renewing;
  }

  #interval(): number {
    let ttl = this.#ttlMs;
    if (ttl === undefined) ttl = this.#leaseExpiresAt ? this.#leaseExpiresAt.getTime() - Date.now() : 60_000;
    return Math.max(MIN_INTERVAL_MS, ttl / 3);
  }

  #schedule(): void {
    if (!this.#renewing) return;
    const interval = this.#interval();
    this.#timer = setTimeout(() => void this.#tick(interval), interval);
    this.#timer.unref?.();
  }

  async #tick(interval: number): Promise<void> {
    this.#timer = undefined;
    if (!this.#renewing) return;
    try {
      // Retry a transient failure within this interval; the next tick tries again anyway.
      await this.#keepAlive({}, interval);
    } catch (err) {
      if (!this.#renewing) return;
      this.#leaseError = err;
      if (err instanceof NotFoundError || err instanceof FailedPreconditionError) this.#renewing = false;
      try {
        this.#onLeaseError?.(err);
      } catch {
        // the callback's own failure must not stop renewals
      }
    }
    this.#schedule();
  }

  async #keepAlive(o: CallOptions, retryWithinMs?: number): Promise<Date | undefined> {
    const rpc = await this.#ctx.rpc();
    const policy = this.#ctx.retry && retryWithinMs !== undefined ? { ...this.#ctx.retry, maxElapsedMs: retryWithinMs } : this.#ctx.retry;
    const req = { sandboxId: this.id, ...(this.#ttlMs !== undefined && { leaseTtl: durationFromMs(this.#ttlMs) }) };
    const res = await withRetry(
      () => rpc.keepAlive(req, callOptions(this.#ctx, { deadlineMs: retryWithinMs, ...o }, true)),
      policy,
      o.signal,
    );
    this.#leaseExpiresAt = toDate(res.leaseExpiresAt);
    return this.#leaseExpiresAt;
  }

  /** Throws a pending lease-renewal error once (then clears it). */
  #check(): void {
    if (this.#leaseError !== undefined) {
      const err = this.#leaseError;
      this.#leaseError = undefined;
      throw err;
    }
  }

  /** Renews the lease now; returns the new expiry. */
  async renew(o: CallOptions = {}): Promise<Date | undefined> {
    return this.#keepAlive(o);
  }

  /** Stops renewing the lease without destroying the sandbox (it goes when its lease runs out). */
  detach(): void {
    this.#renewing = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Stops renewing and destroys the sandbox (idempotent; retried on UNAVAILABLE). */
  async close(o: CallOptions = {}): Promise<void> {
    this.detach();
    if (this.#closed) return;
    const rpc = await this.#ctx.rpc();
    await withRetry(() => rpc.destroySandbox({ sandboxId: this.id }, callOptions(this.#ctx, o, true)), this.#ctx.retry, o.signal);
    this.#closed = true;
  }

  /** The same as close(). */
  destroy(o: CallOptions = {}): Promise<void> {
    return this.close(o);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Fetches the sandbox's current state into `info`. */
  async refresh(o: CallOptions = {}): Promise<SandboxInfo> {
    this.#check();
    const rpc = await this.#ctx.rpc();
    const res = await withRetry(() => rpc.getSandbox({ sandboxId: this.id }, callOptions(this.#ctx, o, true)), this.#ctx.retry, o.signal);
    if (!res.sandbox) throw errorForCode(Code.Internal, "GetSandbox returned no sandbox");
    this.info = sandboxInfo(res.sandbox);
    this.#leaseExpiresAt = this.info.leaseExpiresAt;
    return this.info;
  }

  /** Grants or cuts network access beyond the host. */
  async setInternetAccess(enabled: boolean, o: CallOptions = {}): Promise<SandboxInfo> {
    this.#check();
    const rpc = await this.#ctx.rpc();
    try {
      const res = await rpc.setInternetAccess({ sandboxId: this.id, enabled }, callOptions(this.#ctx, o, true));
      if (res.sandbox) this.info = sandboxInfo(res.sandbox);
      return this.info;
    } catch (e) {
      throw toSandboxdError(e);
    }
  }

  /** Replaces the egress allowlist ("10.0.0.0/8", "10.1.2.3:5432"...). */
  async setEgressAllowlist(entries: string[], o: CallOptions = {}): Promise<SandboxInfo> {
    this.#check();
    const rpc = await this.#ctx.rpc();
    try {
      const res = await rpc.setEgressAllowlist({ sandboxId: this.id, entries }, callOptions(this.#ctx, o, true));
      if (res.sandbox) this.info = sandboxInfo(res.sandbox);
      return this.info;
    } catch (e) {
      throw toSandboxdError(e);
    }
  }

  // ---- commands ----

  /**
   * Runs a command and collects its output. Not retried. `timeoutMs` is the
   * command's own limit; `deadlineMs` / `signal` bound the RPC.
   */
  async run(cmd: Cmd, o: RunOptions = {}): Promise<CommandResult> {
    this.#check();
    return collect(execEvents(this.#ctx, execRequest(this.id, cmd, o), o), cmd, o.check);
  }

  /** Runs a command and yields its events as they come. Leaving the loop early cancels it (kills it). */
  async *stream(cmd: Cmd, o: ExecOptions = {}): AsyncGenerator<ExecEvent> {
    this.#check();
    yield* execEvents(this.#ctx, execRequest(this.id, cmd, o), o);
  }

  /** stream() with the output decoded as UTF-8, never splitting a character. */
  streamText(cmd: Cmd, o: ExecOptions = {}): AsyncGenerator<TextEvent> {
    return decodeText(this.stream(cmd, o));
  }

  /**
   * Starts a kept (background) command and returns once it started: it goes
   * on without any RPC; attach to it, write to its stdin, signal it.
   */
  async spawn(cmd: Cmd, o: Omit<ExecOptions, "timeoutMs" | "maxOutputBytes" | "outputLimitAction"> & KeptOptions = {}): Promise<KeptCommand> {
    this.#check();
    // Leaving the loop cancels the Exec, which detaches from a background command.
    for await (const ev of execEvents(this.#ctx, execRequest(this.id, cmd, o, true), o)) {
      if (ev.type === "started") return new KeptCommand(this.#ctx, this.id, ev.execId, o.tag ?? "", ev.pid);
    }
    throw errorForCode(Code.Internal, "exec: the stream ended before the command started");
  }

  /** A handle on a kept command by tag or exec id. */
  command(ref: { tag: string } | { execId: string }): KeptCommand {
    return "tag" in ref
      ? new KeptCommand(this.#ctx, this.id, "", ref.tag, 0)
      : new KeptCommand(this.#ctx, this.id, ref.execId, "", 0);
  }

  /** Running kept commands and those finished within the last hour, newest first. */
  async listCommands(o: CallOptions = {}): Promise<CommandInfo[]> {
    this.#check();
    const rpc = await this.#ctx.rpc();
    const res = await withRetry(() => rpc.listCommands({ sandboxId: this.id }, callOptions(this.#ctx, o, true)), this.#ctx.retry, o.signal);
    return res.commands.map(commandInfo);
  }

  // ---- files ----

  /**
   * Uploads a local file (path), bytes, or chunks (a Node Readable, an async
   * generator) to `remote`, checking the server's sha256 against the one
   * computed while sending. Not retried.
   */
  async upload(remote: string, source: UploadSource, o: UploadOptions = {}): Promise<UploadResult> {
    this.#check();
    return upload(this.#ctx, this.id, remote, source, o);
  }

  /** Writes bytes or a string (UTF-8) to `remote`. */
  async writeFile(remote: string, data: Uint8Array | string, o: UploadOptions = {}): Promise<UploadResult> {
    return this.upload(remote, typeof data === "string" ? new TextEncoder().encode(data) : data, o);
  }

  /**
   * Downloads `remote` to a local path, a Node Writable or a WritableStream,
   * checking sha256; a cut-off stream resumes from the offset reached.
   */
  async download(remote: string, dest: DownloadDest, o: DownloadOptions = {}): Promise<DownloadResult> {
    this.#check();
    return downloadTo(this.#ctx, this.id, remote, dest, o);
  }

  /** Downloads `remote` into memory. */
  async readFile(remote: string, o: DownloadOptions = {}): Promise<Uint8Array> {
    this.#check();
    return readFile(this.#ctx, this.id, remote, o);
  }

  /** Unpacks a tar (or, with gzip, a tar.gz) from a path, bytes or chunks into the new directory `dir`. */
  async uploadArchive(dir: string, source: UploadSource, o: UploadArchiveOptions = {}): Promise<UploadArchiveResult> {
    this.#check();
    return uploadArchive(this.#ctx, this.id, dir, source, o);
  }

  /** Downloads `dir` as a tar (or tar.gz) to a path or stream, or into memory (`data`) without `dest`. */
  async downloadArchive(dir: string, dest?: DownloadDest, o: DownloadArchiveOptions = {}): Promise<DownloadArchiveResult & { data?: Uint8Array }> {
    this.#check();
    if (dest === undefined) {
      const sink = new MemorySink();
      const r = await downloadArchive(this.#ctx, this.id, dir, sink, o);
      return { ...r, data: sink.bytes() };
    }
    return downloadArchive(this.#ctx, this.id, dir, await openSink(dest), o);
  }

  async stat(path: string, o: CallOptions & { followSymlinks?: boolean } = {}): Promise<FileInfo> {
    this.#check();
    return stat(this.#ctx, this.id, path, o);
  }

  /** A directory's entries (`depth` > 1: recursive). */
  async listDir(path: string, o: CallOptions & { depth?: number } = {}): Promise<FileInfo[]> {
    this.#check();
    return listDir(this.#ctx, this.id, path, o);
  }

  async makeDir(path: string, o: CallOptions & { parents?: boolean; mode?: number } = {}): Promise<void> {
    this.#check();
    return makeDir(this.#ctx, this.id, path, o);
  }

  async remove(path: string, o: CallOptions & { recursive?: boolean } = {}): Promise<void> {
    this.#check();
    return remove(this.#ctx, this.id, path, o);
  }

  async move(from: string, to: string, o: CallOptions & { overwrite?: boolean } = {}): Promise<void> {
    this.#check();
    return move(this.#ctx, this.id, from, to, o);
  }

  /** Watches a directory; resolves once the watch is in place. */
  async watch(path: string, o: CallOptions & { recursive?: boolean } = {}): Promise<Watcher> {
    this.#check();
    return watch(this.#ctx, this.id, path, o);
  }
}

/** SandboxdClient: the connection, create / get / list / destroy. */
import "./private/polyfill.js";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { SandboxService } from "./gen/sandbox/v1/sandbox_pb.js";
import { Code, errorForCode, toSandboxdError } from "./errors.js";
import { callOptions, type CallOptions, type Context, type Rpc } from "./private/context.js";
import { Health, SERVING } from "./private/health.js";
import { isTransient, retryPolicy, withRetry, type RetryOptions } from "./private/retry.js";
import { baseUrlOf, createDefaultTransport, type TlsOptions } from "./private/transport.js";
import { Sandbox, sandboxInfo, type LeaseOptions, type SandboxInfo } from "./sandbox.js";

export interface SandboxdClientOptions {
  /** "host:port" or a URL (default: SANDBOXD_ADDR, else 127.0.0.1:8080). Ignored with `transport`. */
  address?: string;
  /** API token, sent as `authorization: Bearer …` (default: SANDBOXD_TOKEN). */
  token?: string;
  /** TLS for the default transport: `true` for the system CAs, or PEM ca / cert / key. */
  tls?: TlsOptions | boolean;
  /** Default deadline of unary calls in ms (default 60 000). */
  timeoutMs?: number;
  /**
   * Any connect Transport instead of the default (connect-node's gRPC
   * transport over HTTP/2), e.g. connect-web's createGrpcWebTransport in a
   * browser. The token still goes out as a header on every call.
   */
  transport?: Transport;
  /** Retries of idempotent calls and create on UNAVAILABLE; `false` turns them off. */
  retry?: RetryOptions | false;
}

export interface CreateOptions extends CallOptions, Omit<LeaseOptions, "ttlMs"> {
  /** CPU cores (0: the server's default). */
  cores?: number;
  memoryMib?: number;
  diskGib?: number;
  labels?: Record<string, string>;
  /** Lease TTL in ms (default: the server's); also used by the renewals. */
  ttlMs?: number;
  internetAccess?: boolean;
  /**
   * Makes the create idempotent: a retry with the same id returns the same
   * sandbox. Default: a random id, reused by this call's own retries.
   */
  requestId?: string;
}

export interface ListOptions extends CallOptions {
  /** Only sandboxes carrying all these labels. */
  labels?: Record<string, string>;
}

function env(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const v = p?.env?.[name]?.trim();
  return v ? v : undefined;
}

function randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

export class SandboxdClient {
  /** The address the default transport connects to. */
  readonly address: string;
  #ctx: Context;
  #rpc: Promise<Rpc> | undefined;
  #health: Client<typeof Health> | undefined;
  #close: (() => void) | undefined;
  #opts: SandboxdClientOptions;

  constructor(opts: SandboxdClientOptions = {}) {
    this.#opts = opts;
    this.address = opts.address ?? env("SANDBOXD_ADDR") ?? "127.0.0.1:8080";
    const token = opts.token ?? env("SANDBOXD_TOKEN");
    const policy = retryPolicy(opts.retry);
    this.#ctx = {
      rpc: () => (this.#rpc ??= this.#connect()),
      timeoutMs: opts.timeoutMs ?? 60_000,
      retry: policy && { ...policy, ready: (signal) => this.#serving(signal) },
      headers: token ? { authorization: `Bearer ${token}` } : {},
    };
  }

  async #connect(): Promise<Rpc> {
    let transport = this.#opts.transport;
    if (!transport) {
      const t = await createDefaultTransport(baseUrlOf(this.address, this.#opts.tls), this.#opts.tls);
      this.#close = t.close;
      transport = t.transport;
    }
    this.#health = createClient(Health, transport);
    return createClient(SandboxService, transport);
  }

  /**
   * Whether the server is ready for the next attempt of a retried call: its
   * health check says SERVING (a restarted sandboxd listens before it has
   * adopted its sandboxes). A server without the health service counts as
   * ready; one that is down or says NOT_SERVING does not.
   */
  async #serving(signal?: AbortSignal): Promise<boolean> {
    await this.#ctx.rpc();
    try {
      const res = await this.#health!.check({ service: "" }, { timeoutMs: 2_000, headers: this.#ctx.headers, ...(signal && { signal }) });
      return res.status === SERVING;
    } catch (e) {
      const err = toSandboxdError(e);
      return !(isTransient(err) || (err instanceof Error && (err as { code?: Code }).code === Code.DeadlineExceeded));
    }
  }

  /**
   * Creates a sandbox and returns once it is ready. Its lease is renewed in
   * the background (every TTL/3) until `close()` (destroys it) or `detach()`.
   * Retried on UNAVAILABLE with the same request id: one sandbox at most.
   */
  async create(o: CreateOptions = {}): Promise<Sandbox> {
    const rpc = await this.#ctx.rpc();
    const req = {
      resources: { cores: o.cores ?? 0, memoryMib: o.memoryMib ?? 0, diskGib: o.diskGib ?? 0 },
      internetAccess: o.internetAccess ?? false,
      labels: o.labels ?? {},
      ...(o.ttlMs !== undefined && { leaseTtl: durationFromMs(o.ttlMs) }),
      requestId: o.requestId ?? `ts-${randomId()}`,
    };
    const res = await withRetry(
      () => rpc.createSandbox(req, callOptions(this.#ctx, { deadlineMs: Math.max(this.#ctx.timeoutMs, 300_000), ...o }, true)),
      this.#ctx.retry,
      o.signal,
    );
    if (!res.sandbox) throw errorForCode(Code.Internal, "CreateSandbox returned no sandbox");
    return new Sandbox(this.#ctx, sandboxInfo(res.sandbox), {
      keepAlive: o.keepAlive ?? true,
      ...(o.ttlMs !== undefined && { ttlMs: o.ttlMs }),
      ...(o.onLeaseError && { onLeaseError: o.onLeaseError }),
    });
  }

  /**
   * A handle on an existing sandbox (NotFoundError if it does not exist).
   * It renews the lease only with `keepAlive: true`; closing it destroys the sandbox.
   */
  async get(id: string, o: CallOptions & LeaseOptions = {}): Promise<Sandbox> {
    const rpc = await this.#ctx.rpc();
    const res = await withRetry(() => rpc.getSandbox({ sandboxId: id }, callOptions(this.#ctx, o, true)), this.#ctx.retry, o.signal);
    if (!res.sandbox) throw errorForCode(Code.Internal, "GetSandbox returned no sandbox");
    return new Sandbox(this.#ctx, sandboxInfo(res.sandbox), { ...o, keepAlive: o.keepAlive ?? false });
  }

  /** All sandboxes (every page), optionally only those with the given labels; oldest first. */
  async list(o: ListOptions = {}): Promise<SandboxInfo[]> {
    const rpc = await this.#ctx.rpc();
    const out: SandboxInfo[] = [];
    let pageToken = "";
    do {
      const req = { labelSelector: o.labels ?? {}, pageSize: 1000, pageToken };
      const res = await withRetry(() => rpc.listSandboxes(req, callOptions(this.#ctx, o, true)), this.#ctx.retry, o.signal);
      for (const s of res.sandboxes) out.push(sandboxInfo(s));
      pageToken = res.nextPageToken;
    } while (pageToken);
    return out;
  }

  /** Destroys a sandbox by id (idempotent). */
  async destroy(id: string, o: CallOptions = {}): Promise<void> {
    const rpc = await this.#ctx.rpc();
    await withRetry(() => rpc.destroySandbox({ sandboxId: id }, callOptions(this.#ctx, o, true)), this.#ctx.retry, o.signal);
  }

  /** Closes the default transport's connection (open streams end). Sandboxes are not destroyed. */
  close(): void {
    this.#close?.();
    this.#close = undefined;
    this.#rpc = undefined;
    this.#health = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

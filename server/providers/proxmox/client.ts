/**
 * The Proxmox VE API over HTTPS: one undici Pool (keep-alive, timeouts), token
 * auth, PVE's error shapes, and bounded retries with jitter for idempotent
 * calls. The token secret never leaves this file: errors carry method, path,
 * status and the server's message only, never headers or undici's raw error.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { TLSSocket } from "node:tls";
import { Pool, buildConnector, fetch } from "undici";
import { SpanKind } from "@opentelemetry/api";
import { proxmox as metrics, proxmoxPathTemplate } from "../../telemetry/metrics.js";
import { inSpan } from "../../telemetry/tracing.js";
import { backoffMs, classify, PveError, sleep } from "./retry.js";

export interface ClientOptions {
  url: string;
  tokenId: string;
  secret: string;
  caFile?: string;
  /** SHA-256 of the server certificate (hex, colons optional). */
  fingerprint?: string;
  insecure?: boolean;
  connectTimeoutMs: number;
  /** Headers and body timeout of every request. */
  requestTimeoutMs: number;
  /** Attempts for 5xx/596/dropped connections on idempotent calls. Default 5. */
  maxAttempts?: number;
  /** How long lock contention ("CT is locked", "got timeout") is retried. Default 60 s. */
  lockRetryMs?: number;
  logger?: { debug: (o: object, m?: string) => void };
}

export type Params = Record<string, string | number | boolean | undefined>;

export interface CallOptions {
  /**
   * "idempotent" (default for GET/PUT/DELETE): retry transient failures and locks.
   * "once": retry only lock refusals (nothing happened); a transient failure is thrown
   * as is, for the caller to find out what happened before retrying.
   */
  retry?: "idempotent" | "once";
  signal?: AbortSignal;
  /** Absolute time (ms epoch) after which no retry starts. */
  deadline?: number;
}

const normalise = (fp: string) => fp.replace(/[^0-9a-f]/gi, "").toLowerCase();

export function makeDispatcher(o: ClientOptions): Pool {
  const origin = new URL(o.url).origin;
  const tls: Record<string, unknown> = { timeout: o.connectTimeoutMs, keepAlive: true };
  if (o.fingerprint) {
    const want = normalise(o.fingerprint);
    const base = buildConnector({ ...tls, rejectUnauthorized: false });
    const connect: buildConnector.connector = (opts, cb) =>
      base(opts, (err, socket) => {
        if (err || !socket) return cb(err ?? new Error("no socket"), null);
        const cert = (socket as TLSSocket).getPeerCertificate?.();
        const got = cert?.raw ? createHash("sha256").update(cert.raw).digest("hex") : "";
        if (got !== want) {
          socket.destroy();
          return cb(Object.assign(new Error("server certificate does not match the pinned fingerprint"), { code: "CERT_FINGERPRINT_MISMATCH" }), null);
        }
        cb(null, socket);
      });
    return makePool(origin, o, connect);
  }
  if (o.caFile) return makePool(origin, o, { ...tls, ca: readFileSync(o.caFile, "utf8"), rejectUnauthorized: true });
  if (o.insecure) return makePool(origin, o, { ...tls, rejectUnauthorized: false });
  return makePool(origin, o, { ...tls, rejectUnauthorized: true });
}

function makePool(origin: string, o: ClientOptions, connect: buildConnector.BuildOptions | buildConnector.connector): Pool {
  return new Pool(origin, {
    connections: 16, pipelining: 1, keepAliveTimeout: 4_000, keepAliveMaxTimeout: 4_000,
    connectTimeout: o.connectTimeoutMs, headersTimeout: o.requestTimeoutMs, bodyTimeout: o.requestTimeoutMs,
    connect: connect as never,
  });
}

export class PveClient {
  private readonly pool: Pool;
  private readonly auth: string;
  private readonly base: string;

  constructor(private readonly o: ClientOptions) {
    this.pool = makeDispatcher(o);
    this.auth = `PVEAPIToken=${o.tokenId}=${o.secret}`;
    this.base = `${new URL(o.url).origin}/api2/json`;
  }

  get<T = any>(path: string, params?: Params, c?: CallOptions): Promise<T> {
    return this.call("GET", path, params, c);
  }
  post<T = any>(path: string, params?: Params, c?: CallOptions): Promise<T> {
    return this.call("POST", path, params, { retry: "once", ...c });
  }
  put<T = any>(path: string, params?: Params, c?: CallOptions): Promise<T> {
    return this.call("PUT", path, params, c);
  }
  delete<T = any>(path: string, params?: Params, c?: CallOptions): Promise<T> {
    return this.call("DELETE", path, params, c);
  }

  call<T>(method: string, path: string, params: Params = {}, c: CallOptions = {}): Promise<T> {
    const template = proxmoxPathTemplate(path);
    const attributes = { "http.request.method": method, "url.template": template };
    return inSpan(`proxmox ${method} ${template}`, attributes, () => this.attempts<T>(method, path, template, params, c), SpanKind.CLIENT);
  }

  private async attempts<T>(method: string, path: string, template: string, params: Params, c: CallOptions): Promise<T> {
    const maxAttempts = this.o.maxAttempts ?? 5;
    const lockUntil = c.deadline ?? Date.now() + (this.o.lockRetryMs ?? 60_000);
    for (let attempt = 0, transient = 0; ; attempt++) {
      try {
        return await this.once<T>(method, path, template, params, c.signal);
      } catch (e) {
        if (c.signal?.aborted) throw e;
        const kind = classify(e);
        const retryTransient = kind === "transient" && (c.retry ?? "idempotent") === "idempotent" && ++transient < maxAttempts;
        const retryLock = kind === "locked" && Date.now() < lockUntil;
        const wait = backoffMs(attempt);
        if (!(retryTransient || retryLock) || Date.now() + wait > (c.deadline ?? Infinity)) throw e;
        this.o.logger?.debug({ method, path, attempt, kind, err: (e as Error).message }, "proxmox call retried");
        metrics.retries.inc({ method, path: template, kind });
        await sleep(wait, c.signal);
      }
    }
  }

  /** One attempt, counted by method, path template and status (0: no answer). */
  private async once<T>(method: string, path: string, template: string, params: Params, signal?: AbortSignal): Promise<T> {
    const started = performance.now();
    let status = 0;
    try {
      const { value, httpStatus } = await this.request<T>(method, path, params, signal);
      status = httpStatus;
      return value;
    } catch (e) {
      if (e instanceof PveError) status = e.status;
      throw e;
    } finally {
      metrics.requests.inc({ method, path: template, status: String(status) });
      metrics.seconds.observe({ method, path: template }, (performance.now() - started) / 1000);
    }
  }

  private async request<T>(method: string, path: string, params: Params, signal?: AbortSignal): Promise<{ value: T; httpStatus: number }> {
    const entries = Object.entries(params).filter(([, v]) => v !== undefined).map(([k, v]) => [k, typeof v === "boolean" ? (v ? "1" : "0") : String(v)]);
    const qs = new URLSearchParams(entries).toString();
    const hasBody = method === "POST" || method === "PUT";
    const url = `${this.base}${path}${!hasBody && qs ? `?${qs}` : ""}`;
    const headers: Record<string, string> = { Authorization: this.auth, Accept: "application/json" };
    if (hasBody) headers["Content-Type"] = "application/x-www-form-urlencoded";
    let res;
    let text: string;
    try {
      res = await fetch(url, { method, headers, body: hasBody ? qs : undefined, dispatcher: this.pool, signal });
      text = await res.text();
    } catch (e) {
      if (signal?.aborted) throw signal.reason ?? e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const code = cause?.code ?? (e as { code?: string }).code ?? "ECONNERROR";
      const msg = cause?.message ?? (e as Error).message;
      throw new PveError(`${method} ${path}: no answer from Proxmox (${code}: ${msg})`, 0, msg, undefined, code);
    }
    let body: { data?: unknown; errors?: Record<string, string>; message?: string } = {};
    if (text) {
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        body = {};
      }
    }
    if (res.status === 200) return { value: body.data as T, httpStatus: 200 };
    const detail = (body.message ?? res.statusText ?? "").trim() || `HTTP ${res.status}`;
    const errs = body.errors ? ` (${Object.entries(body.errors).map(([k, v]) => `${k}: ${String(v).trim()}`).join("; ")})` : "";
    throw new PveError(`${method} ${path}: ${res.status} ${detail}${errs}`, res.status, detail, body.errors);
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => {});
  }
}

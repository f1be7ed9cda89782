/**
 * One JSON log line per RPC: method, sandbox id, code, duration and a request
 * id (the client's x-request-id header, or a generated one, echoed back),
 * and who called: tenant and principal (a token's or certificate's name,
 * never a secret). Calls that change something carry `audit: true`: the
 * audit log is these lines.
 */
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "../providers/local/options.js";
import { principalKey, READ_ONLY_RPCS } from "../auth/index.js";
import { currentTraceIds, traceIdOf } from "../telemetry/tracing.js";
import { phaseDurations, type ExecPhaseStamps } from "./exec-phases.js";
import { requestArrivedAt } from "./node-request.js";


interface RpcInfo {
  sandboxId?: string;
  /** Set when the debug level is on: the handler fills it (Exec) and the line is logged at the end. */
  phases?: ExecPhaseStamps;
  debug: boolean;
}
const rpcInfoKey = createContextKey<RpcInfo | undefined>(undefined, { description: "sandboxd rpc info" });

/** Handlers name the sandbox they work on (Upload only learns it from its first message). */
export function noteSandbox(ctx: HandlerContext, sandboxId: string): void {
  const info = ctx.values.get(rpcInfoKey);
  if (info) info.sandboxId = sandboxId;
}

/** Stamps for this RPC's phase breakdown (exec-phases.ts), only when debug logging is on. */
export function phaseStamps(ctx: HandlerContext, handlerStart: number): ExecPhaseStamps | undefined {
  const info = ctx.values.get(rpcInfoKey);
  if (!info?.debug) return undefined;
  return (info.phases = { arrived: requestArrivedAt(ctx), handler: handlerStart });
}

export function rpcLogInterceptor(log: Logger): Interceptor {
  const debug = (log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.("debug") ?? false;
  return (next) => async (req) => {
    const started = performance.now();
    const requestId = req.header.get("x-request-id")?.slice(0, 128) || randomUUID();
    const info: RpcInfo = { debug };
    req.contextValues.set(rpcInfoKey, info);
    let logged = false;
    const done = (err?: unknown) => {
      if (logged) return;
      logged = true;
      const code = err === undefined ? "ok" : Code[ConnectError.from(err).code];
      const who = req.contextValues.get(principalKey);
      const audit = req.service.typeName === "sandbox.v1.SandboxService" && !READ_ONLY_RPCS.has(req.method.name);
      // With tracing on, the logger adds the span's ids to every line; off, this line still names the caller's trace.
      const traceId = currentTraceIds() ? undefined : traceIdOf(req.header.get("traceparent"));
      const line = {
        ...(traceId ? { trace_id: traceId } : {}),
        rpc: req.method.name, sandboxId: info.sandboxId, code, durationMs: Math.round(performance.now() - started), requestId,
        ...(who ? { tenant: who.tenant, principal: who.name, via: who.via } : {}), ...(audit ? { audit: true } : {}),
      };
      if (err !== undefined && !(err instanceof ConnectError && err.code !== Code.Internal && err.code !== Code.Unknown)) log.warn(line, "rpc");
      else log.info(line, "rpc");
      if (info.phases) log.debug({ rpc: line.rpc, requestId, code, phases: phaseDurations(info.phases, performance.now()) }, "exec phases");
    };
    // A stream stalled at `yield` may never end (connect-node hang): log on abort too.
    req.signal.addEventListener("abort", () => done(req.signal.reason ?? new ConnectError("aborted", Code.Canceled)), { once: true });
    try {
      const res = await next(req);
      res.header.set("x-request-id", requestId);
      if (!res.stream) {
        done();
        return res;
      }
      return { ...res, message: logStreamEnd(res.message, done) };
    } catch (err) {
      done(err);
      if (err instanceof ConnectError) err.metadata.set("x-request-id", requestId);
      throw err;
    }
  };
}

async function* logStreamEnd<T>(source: AsyncIterable<T>, done: (err?: unknown) => void): AsyncGenerator<T> {
  try {
    yield* source;
    done();
  } catch (err) {
    done(err);
    throw err;
  }
}

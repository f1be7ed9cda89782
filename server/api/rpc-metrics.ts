/**
 * Prometheus metrics and the trace status of every RPC, go-grpc-prometheus
 * style: started, handled (by code), handling time, messages each way, and
 * the streams in flight. Outermost with the log interceptor, so the code is
 * the one the client gets.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { rpc } from "../telemetry/metrics.js";
import { noteRpcStatus } from "../telemetry/tracing.js";

const TYPES = { unary: "unary", server_streaming: "server_stream", client_streaming: "client_stream", bidi_streaming: "bidi_stream" } as const;

/** Go's codes.Code.String(): "OK", "Canceled", "InvalidArgument", … (connect's names are the same in PascalCase). */
const codeName = (code: Code | undefined) => (code === undefined ? "OK" : Code[code]!);

export function rpcMetricsInterceptor(): Interceptor {
  return (next) => async (req) => {
    const labels = { grpc_type: TYPES[req.method.methodKind], grpc_service: req.service.typeName, grpc_method: req.method.name };
    const started = performance.now();
    const streaming = req.method.methodKind !== "unary";
    rpc.started.inc(labels);
    if (streaming) rpc.streamsInFlight.inc(labels);
    let ended = false;
    const end = (err?: unknown) => {
      if (ended) return;
      ended = true;
      const e = err === undefined ? undefined : ConnectError.from(err);
      rpc.handled.inc({ ...labels, grpc_code: codeName(e?.code) });
      rpc.seconds.observe(labels, (performance.now() - started) / 1000);
      if (streaming) rpc.streamsInFlight.dec(labels);
      noteRpcStatus(e?.code ?? 0, codeName(e?.code), e?.rawMessage);
    };
    // A stream stalled at `yield` may never end (see rpc-log.ts): count it on abort too.
    req.signal.addEventListener("abort", () => end(req.signal.reason ?? new ConnectError("aborted", Code.Canceled)), { once: true });
    const counted = req.stream ? { ...req, message: countEach(req.message, () => rpc.received.inc(labels)) } : req;
    if (!req.stream) rpc.received.inc(labels);
    try {
      const res = await next(counted);
      if (!res.stream) {
        rpc.sent.inc(labels);
        end();
        return res;
      }
      return { ...res, message: countStream(res.message, () => rpc.sent.inc(labels), end) };
    } catch (err) {
      end(err);
      throw err;
    }
  };
}

async function* countEach<T>(source: AsyncIterable<T>, each: () => void): AsyncGenerator<T> {
  for await (const m of source) {
    each();
    yield m;
  }
}

async function* countStream<T>(source: AsyncIterable<T>, each: () => void, end: (err?: unknown) => void): AsyncGenerator<T> {
  try {
    for await (const m of source) {
      each();
      yield m;
    }
    end();
  } catch (err) {
    end(err);
    throw err;
  }
}

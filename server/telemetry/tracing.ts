/**
 * OpenTelemetry tracing. A W3C `traceparent` on an incoming RPC is continued;
 * each RPC, Proxmox API call, sandbox create/destroy and SSH operation is a
 * span. Spans are exported over OTLP/HTTP when the standard
 * OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set;
 * otherwise nothing is installed and every span is the API's no-op (the RPC's
 * log line then takes the trace id from the caller's traceparent itself).
 */
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter as OtlpJsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OtlpProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

const tracer = () => trace.getTracer("sandboxd");

export class TracingConfigError extends Error {
  override readonly name = "TracingConfigError";
}

export interface Tracing {
  /** Whether spans are exported. */
  exporting: boolean;
  /** Exports what is buffered, then stops. */
  shutdown(): Promise<void>;
}

let installed: Tracing | undefined;

/** Installs context propagation, and the exporting SDK when OTLP is configured. Once per process. */
export function initTracing(env: NodeJS.ProcessEnv = process.env): Tracing {
  if (installed) return installed;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const off = !endpoint || env.OTEL_SDK_DISABLED === "true" || env.OTEL_TRACES_EXPORTER === "none";
  // Off: nothing is installed. Context propagation (AsyncLocalStorage) would slow every promise in
  // the process on Node 20; the RPC's own log line still carries the caller's trace id (rpc-log.ts).
  if (off) return (installed = { exporting: false, shutdown: async () => {} });
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || "http/protobuf";
  // The exporters read the endpoint, headers, timeout and compression from the same variables.
  let exporter;
  if (protocol === "http/protobuf") exporter = new OtlpProtoExporter();
  else if (protocol === "http/json") exporter = new OtlpJsonExporter();
  else throw new TracingConfigError(`OTEL_EXPORTER_OTLP_PROTOCOL: expected http/protobuf or http/json, got '${protocol}' (grpc is not supported)`);
  const resource = resourceFromAttributes({ "service.name": env.OTEL_SERVICE_NAME || "sandboxd" }).merge(detectResources({ detectors: [envDetector] }));
  // Sampling follows OTEL_TRACES_SAMPLER (default: parent-based, always on); batching follows OTEL_BSP_*.
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  return (installed = { exporting: true, shutdown: () => provider.shutdown() });
}

type NodeHandler<Req, Res> = (req: Req, res: Res) => void;

/**
 * Runs each HTTP request in its RPC's span: continues the caller's `traceparent`,
 * names the span after the RPC (known paths only, so a caller cannot mint names),
 * ends it when the response closes.
 */
export function traceRequests<Req extends { url?: string; headers: Record<string, string | string[] | undefined> }, Res extends { once(e: "close", f: () => void): unknown }>(
  handler: NodeHandler<Req, Res>,
  knownPaths: ReadonlySet<string>,
): NodeHandler<Req, Res> {
  return (req, res) => {
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const path = req.url ?? "";
    const known = knownPaths.has(path);
    const [service, method] = known ? path.slice(1).split("/") : ["", ""];
    const span = tracer().startSpan(known ? `${service}/${method}` : "unknown rpc", {
      kind: SpanKind.SERVER,
      attributes: known ? { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method } : { "rpc.system": "grpc" },
    }, parent);
    res.once("close", () => span.end());
    context.with(trace.setSpan(parent, span), () => handler(req, res));
  };
}

/** Records an RPC's final status on its span (the current one). */
export function noteRpcStatus(code: number, codeName: string, message?: string): void {
  const span = trace.getActiveSpan();
  if (!span) return;
  span.setAttribute("rpc.grpc.status_code", code);
  if (code !== 0) span.setStatus({ code: SpanStatusCode.ERROR, message: message ? `${codeName}: ${message}` : codeName });
}

/** Runs `fn` in a child span of the current one; errors mark the span and pass through. */
export async function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>, kind = SpanKind.INTERNAL): Promise<T> {
  return tracer().startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message.slice(0, 300) : String(err).slice(0, 300) });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** The trace id of a W3C traceparent header (version 00), if it is one. */
export function traceIdOf(traceparent: string | null | undefined): string | undefined {
  const m = traceparent && /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent.trim());
  return m && m[1] !== "0".repeat(32) ? m[1] : undefined;
}

/** The current trace and span ids, for log lines (none outside a trace). */
export function currentTraceIds(): { trace_id: string; span_id: string } | undefined {
  const span = trace.getActiveSpan();
  if (!span) return undefined;
  const c = span.spanContext();
  if (!trace.isSpanContextValid(c)) return undefined;
  return { trace_id: c.traceId, span_id: c.spanId };
}

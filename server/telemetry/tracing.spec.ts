import { describe, expect, it } from "vitest";
import { initTracing, TracingConfigError } from "./tracing.js";

describe("initTracing", () => {
  it("refuses an OTLP protocol it cannot export (before installing anything)", () => {
    expect(() => initTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toThrow(TracingConfigError);
    expect(() => initTracing({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:4318/v1/traces", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "thrift" })).toThrow(
      "OTEL_EXPORTER_OTLP_PROTOCOL: expected http/protobuf or http/json, got 'thrift' (grpc is not supported)",
    );
  });
});

import { describe, expect, it } from "vitest";
import { initTracing, traceIdOf, TracingConfigError } from "./tracing.js";

describe("initTracing", () => {
  it("refuses an OTLP protocol it cannot export (before installing anything)", () => {
    expect(() => initTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toThrow(TracingConfigError);
    expect(() => initTracing({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:4318/v1/traces", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "thrift" })).toThrow(
      "OTEL_EXPORTER_OTLP_PROTOCOL: expected http/protobuf or http/json, got 'thrift' (grpc is not supported)",
    );
  });
});

describe("traceIdOf", () => {
  it("reads the trace id of a version-00 traceparent and nothing else", () => {
    expect(traceIdOf("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    for (const bad of [undefined, null, "", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", `00-${"a".repeat(32)}-${"b".repeat(16)}-01-extra`, "00-\"}\n-x"]) {
      expect(traceIdOf(bad)).toBeUndefined();
    }
  });
});

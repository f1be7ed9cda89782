import { create, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ExtensionRequestSchema,
  ServerReflection as ReflectionV1Alpha,
  ServerReflectionRequestSchema as RequestV1AlphaSchema,
} from "../../gen/ts/vendor/grpc/reflection/v1alpha/reflection_pb.js";
import type { ServerReflectionRequest as RequestV1Alpha } from "../../gen/ts/vendor/grpc/reflection/v1alpha/reflection_pb.js";
import { grpcurl, startTestServer } from "./test-server.js";
import type { TestServer } from "./test-server.js";

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

describe("reflection via the real grpcurl (v1)", () => {
  it("lists every service, including reflection and health", async () => {
    const out = await grpcurl([], srv.address, "list");
    expect(out.trim().split("\n").sort()).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "sandbox.v1.SandboxService",
    ]);
  });

  it("lists methods with -use-reflection given explicitly", async () => {
    const out = await grpcurl(["-use-reflection"], srv.address, "list", "sandbox.v1.SandboxService");
    expect(out).toContain("sandbox.v1.SandboxService.CreateSandbox");
    expect(out).toContain("sandbox.v1.SandboxService.Exec");
  });

  it("describes the service with streaming signatures", async () => {
    const out = await grpcurl([], srv.address, "describe", "sandbox.v1.SandboxService");
    expect(out).toContain("sandbox.v1.SandboxService is a service:");
    expect(out).toMatch(/rpc Exec \( \.sandbox\.v1\.ExecRequest \) returns \( stream \.sandbox\.v1\.ExecResponse \)/);
    expect(out).toMatch(/rpc Upload \( stream \.sandbox\.v1\.UploadRequest \)/);
  });

  it("describes messages, whose well-known-type dependencies resolve", async () => {
    const out = await grpcurl(["-use-reflection"], srv.address, "describe", "sandbox.v1.ExecRequest");
    expect(out).toContain("sandbox.v1.ExecRequest is a message:");
    // Sandbox uses google.protobuf.Timestamp: describing it needs the WKT file.
    const sandbox = await grpcurl([], srv.address, "describe", "sandbox.v1.Sandbox");
    expect(sandbox).toContain(".google.protobuf.Timestamp");
  });

  it("describes methods and nested enums", async () => {
    expect(await grpcurl([], srv.address, "describe", "sandbox.v1.SandboxService.Exec")).toContain("is a method:");
    expect(await grpcurl([], srv.address, "describe", "sandbox.v1.Sandbox.State")).toContain("is an enum:");
  });

  it("reports unknown symbols as not found", async () => {
    await expect(grpcurl([], srv.address, "describe", "sandbox.v1.Nope")).rejects.toThrow(/not found/i);
  });

  it("lets grpcurl call health with descriptors from reflection", async () => {
    const out = await grpcurl([], srv.address, "grpc.health.v1.Health/Check");
    expect(JSON.parse(out)).toEqual({ status: "SERVING" });
  });
});

describe("reflection v1alpha via a connect-es client", () => {
  it("answers every request kind on one stream, errors as ErrorResponse", async () => {
    const client = createClient(ReflectionV1Alpha, createGrpcTransport({ baseUrl: srv.baseUrl }));
    const reqs: RequestV1Alpha["messageRequest"][] = [
      { case: "listServices", value: "" },
      { case: "fileContainingSymbol", value: "sandbox.v1.ExecRequest" },
      { case: "fileByFilename", value: "sandbox/v1/sandbox.proto" },
      { case: "fileContainingSymbol", value: "no.such.Symbol" },
      {
        case: "fileContainingExtension",
        value: create(ExtensionRequestSchema, { containingType: "sandbox.v1.ExecRequest", extensionNumber: 100 }),
      },
      { case: "allExtensionNumbersOfType", value: "sandbox.v1.ExecRequest" },
    ];
    async function* requests() {
      for (const messageRequest of reqs) yield create(RequestV1AlphaSchema, { messageRequest });
    }
    const res = [];
    for await (const r of client.serverReflectionInfo(requests())) res.push(r.messageResponse);
    expect(res).toHaveLength(reqs.length);

    const [list, bySymbol, byName, missing, extension, numbers] = res;
    expect(list?.case).toBe("listServicesResponse");
    if (list?.case === "listServicesResponse") {
      expect(list.value.service.map((s) => s.name)).toContain("sandbox.v1.SandboxService");
    }

    expect(bySymbol?.case).toBe("fileDescriptorResponse");
    if (bySymbol?.case === "fileDescriptorResponse") {
      const names = bySymbol.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
      // The requested file leads, followed by its transitive dependencies.
      expect(names[0]).toBe("sandbox/v1/sandbox.proto");
      expect(names).toContain("google/protobuf/timestamp.proto");
      expect(new Set(names).size).toBe(names.length);
    }
    // Already sent on this stream: only the requested file, no dependencies again.
    expect(byName?.case).toBe("fileDescriptorResponse");
    if (byName?.case === "fileDescriptorResponse") expect(byName.value.fileDescriptorProto).toHaveLength(1);

    for (const err of [missing, extension]) {
      expect(err?.case).toBe("errorResponse");
      if (err?.case === "errorResponse") expect(err.value.errorCode).toBe(5);
    }
    expect(numbers?.case).toBe("allExtensionNumbersResponse");
    if (numbers?.case === "allExtensionNumbersResponse") expect(numbers.value.extensionNumber).toEqual([]);
  });
});

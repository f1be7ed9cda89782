// gRPC server reflection (grpc.reflection.v1 and v1alpha) for connect-node.
// No npm package serves reflection on a connect-node router (@grpc/reflection
// needs a grpc-js Server), so this answers ServerReflectionInfo from the
// descriptors protoc-gen-es embeds in the generated code.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescFile } from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  ServerReflection as ServerReflectionV1,
  ServerReflectionRequestSchema as RequestV1Schema,
  ServerReflectionResponseSchema as ResponseV1Schema,
  ErrorResponseSchema,
  ExtensionNumberResponseSchema,
  FileDescriptorResponseSchema,
  ListServiceResponseSchema,
  file_grpc_reflection_v1_reflection,
} from "../../gen/ts/vendor/grpc/reflection/v1/reflection_pb.js";
import type {
  ServerReflectionRequest as RequestV1,
  ServerReflectionResponse as ResponseV1,
} from "../../gen/ts/vendor/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflection as ServerReflectionV1Alpha,
  ServerReflectionRequestSchema as RequestV1AlphaSchema,
  ServerReflectionResponseSchema as ResponseV1AlphaSchema,
  file_grpc_reflection_v1alpha_reflection,
} from "../../gen/ts/vendor/grpc/reflection/v1alpha/reflection_pb.js";
import { file_grpc_health_v1_health } from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";

/** Index of every file reachable from the served files, by name and symbol. */
interface ReflectionIndex {
  services: string[];
  byFilename: Map<string, DescFile>;
  bySymbol: Map<string, DescFile>;
}

function buildIndex(files: DescFile[]): ReflectionIndex {
  // Reflection and health describe themselves too: grpcurl lists and
  // describes them like any other service.
  const roots = [
    ...files,
    file_grpc_reflection_v1_reflection,
    file_grpc_reflection_v1alpha_reflection,
    file_grpc_health_v1_health,
  ];
  const services = new Set<string>();
  for (const file of roots) for (const s of file.services) services.add(s.typeName);

  const byFilename = new Map<string, DescFile>();
  const bySymbol = new Map<string, DescFile>();
  const visit = (file: DescFile): void => {
    if (byFilename.has(file.name + ".proto")) return;
    byFilename.set(file.name + ".proto", file);
    // nestedTypes walks messages, enums, extensions and services recursively.
    for (const t of nestedTypes(file)) {
      bySymbol.set(t.typeName, file);
      switch (t.kind) {
        case "service":
          for (const m of t.methods) bySymbol.set(`${t.typeName}.${m.name}`, file);
          break;
        case "message":
          for (const f of t.fields) bySymbol.set(`${t.typeName}.${f.name}`, file);
          for (const o of t.oneofs) bySymbol.set(`${t.typeName}.${o.name}`, file);
          break;
        case "enum":
          // Enum values are scoped to the enum's parent, as in protoc.
          for (const v of t.values) {
            const parent = t.typeName.slice(0, t.typeName.length - t.name.length);
            bySymbol.set(`${parent}${v.name}`, file);
          }
          break;
        default:
          break;
      }
    }
    for (const dep of file.dependencies) visit(dep);
  };
  for (const file of roots) visit(file);
  return { services: [...services].sort(), byFilename, bySymbol };
}

/** Dependencies first, each file once per stream (tracked in `sent`). */
function fileWithDeps(file: DescFile, sent: Set<string>): Uint8Array[] {
  const out: Uint8Array[] = [];
  const walk = (f: DescFile): void => {
    if (sent.has(f.name)) return;
    sent.add(f.name);
    for (const dep of f.dependencies) walk(dep);
    out.push(toBinary(FileDescriptorProtoSchema, f.proto));
  };
  // The requested file itself must be sent even if it went out before:
  // clients expect a non-empty answer to every file request.
  if (sent.has(file.name)) return [toBinary(FileDescriptorProtoSchema, file.proto)];
  walk(file);
  // grpcurl (protoreflect) takes the first descriptor as the answer to the
  // request, so the requested file leads and its dependencies follow.
  const self = out.pop();
  return self ? [self, ...out] : out;
}

function errorResponse(code: Code, message: string): ResponseV1["messageResponse"] {
  return { case: "errorResponse", value: create(ErrorResponseSchema, { errorCode: code, errorMessage: message }) };
}

function answer(index: ReflectionIndex, req: RequestV1, sent: Set<string>): ResponseV1 {
  const files = (file: DescFile | undefined, what: string): ResponseV1["messageResponse"] =>
    file
      ? { case: "fileDescriptorResponse", value: create(FileDescriptorResponseSchema, { fileDescriptorProto: fileWithDeps(file, sent) }) }
      : errorResponse(Code.NotFound, `${what} not found`);
  let messageResponse: ResponseV1["messageResponse"];
  const r = req.messageRequest;
  switch (r.case) {
    case "listServices":
      messageResponse = {
        case: "listServicesResponse",
        value: create(ListServiceResponseSchema, { service: index.services.map((name) => ({ name })) }),
      };
      break;
    case "fileByFilename":
      messageResponse = files(index.byFilename.get(r.value), `file ${r.value}`);
      break;
    case "fileContainingSymbol":
      messageResponse = files(index.bySymbol.get(r.value.replace(/^\./, "")), `symbol ${r.value}`);
      break;
    case "fileContainingExtension":
      // The served files declare no extensions.
      messageResponse = errorResponse(Code.NotFound, `extension ${r.value.containingType}#${r.value.extensionNumber} not found`);
      break;
    case "allExtensionNumbersOfType":
      messageResponse = index.bySymbol.has(r.value)
        ? {
            case: "allExtensionNumbersResponse",
            value: create(ExtensionNumberResponseSchema, { baseTypeName: r.value }),
          }
        : errorResponse(Code.NotFound, `type ${r.value} not found`);
      break;
    default:
      messageResponse = errorResponse(Code.InvalidArgument, "empty message_request");
  }
  return create(ResponseV1Schema, { validHost: req.host, originalRequest: req, messageResponse });
}

/**
 * Serve grpc.reflection.v1 and v1alpha ServerReflectionInfo for the services
 * in `files` (plus reflection and health). Request errors go back as
 * ErrorResponse messages; the stream stays open for further requests.
 */
export function registerReflection(router: ConnectRouter, files: DescFile[]): void {
  const index = buildIndex(files);
  router.service(ServerReflectionV1, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const req of requests) yield answer(index, req, sent);
    },
  });
  // v1alpha is wire-identical to v1 (same field numbers), so its messages are
  // converted through the binary form instead of duplicating the logic.
  router.service(ServerReflectionV1Alpha, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const req of requests) {
        const v1 = fromBinary(RequestV1Schema, toBinary(RequestV1AlphaSchema, req));
        const res = answer(index, v1, sent);
        yield fromBinary(ResponseV1AlphaSchema, toBinary(ResponseV1Schema, res));
      }
    },
  });
}

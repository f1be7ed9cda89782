/** A @grpc/grpc-js client for SandboxService built from the generated descriptors (the reference implementation). */
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";

const codec = (schema: DescMessage) => ({
  serialize: (m: object) => Buffer.from(toBinary(schema, create(schema, m as never))),
  deserialize: (b: Buffer) => fromBinary(schema, b),
});

export function grpcJsClient(address: string): grpc.Client & Record<string, Function> {
  const definition: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const m of SandboxService.methods) {
    const req = codec(m.input);
    const res = codec(m.output);
    definition[m.localName] = {
      path: `/${SandboxService.typeName}/${m.name}`,
      requestStream: m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
      responseStream: m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
      requestSerialize: req.serialize,
      requestDeserialize: req.deserialize,
      responseSerialize: res.serialize,
      responseDeserialize: res.deserialize,
    };
  }
  const Ctor = grpc.makeGenericClientConstructor(definition as grpc.ServiceDefinition, "SandboxService");
  return new Ctor(address, grpc.credentials.createInsecure()) as never;
}

/** Promisified unary call. */
export function unary<T>(client: grpc.Client & Record<string, Function>, method: string, request: object): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method]!(request, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

/**
 * The one place where errors become gRPC status codes. Handlers and the layers
 * below throw SandboxErrors (or anything); the error interceptor maps them
 * here. Unknown errors become INTERNAL with a generic message: their details
 * (which might hold paths, hosts or worse) only go to the log.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { isSandboxError, type SandboxErrorKind } from "../errors.js";
import type { Logger } from "../providers/local/options.js";

/** What a client sees of an internal error; the rpc log line with the same x-request-id has the details. */
export const INTERNAL_MESSAGE = "internal error: the server's log has the details under this call's x-request-id";

const CODES: Record<SandboxErrorKind, Code> = {
  not_found: Code.NotFound,
  invalid_argument: Code.InvalidArgument,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
  deadline_exceeded: Code.DeadlineExceeded,
  cancelled: Code.Canceled,
  permission_denied: Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  already_exists: Code.AlreadyExists,
  out_of_range: Code.OutOfRange,
  internal: Code.Internal,
};

/** Domain option names (server/ssh) → the proto fields clients know. */
const PROTO_FIELDS: Record<string, string> = {
  expectedSha256: "expected_sha256",
  expectedSize: "expected_size",
  createParents: "make_parents",
  timeoutMs: "timeout",
  maxStdoutBytes: "max_output_bytes",
  maxStderrBytes: "max_output_bytes",
  onOutputLimit: "output_limit_action",
  memoryMiB: "memory_mib",
  diskGiB: "disk_gib",
  egress_allow: "entries",
};

export function toConnectError(err: unknown, log: Logger, context: object = {}): ConnectError {
  if (err instanceof ConnectError) return err;
  if (isSandboxError(err)) {
    let message = err.message;
    const proto = err.field && PROTO_FIELDS[err.field];
    if (proto && message.startsWith(`${err.field}:`)) message = proto + message.slice(err.field!.length);
    if (err.kind === "internal") {
      // Internal errors may carry host details (command lines, log tails): the log gets them, the client does not.
      log.error({ ...context, err: describe(err) }, "internal error");
      return new ConnectError(INTERNAL_MESSAGE, Code.Internal);
    }
    return new ConnectError(message, CODES[err.kind]);
  }
  log.error({ ...context, err: describe(err) }, "unexpected error");
  return new ConnectError(INTERNAL_MESSAGE, Code.Internal);
}

function describe(err: unknown): object {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack, cause: err.cause ? String(err.cause) : undefined };
  return { value: String(err) };
}

/** Maps errors of unary calls and of streamed responses. */
export function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    const context = { method: req.method.name };
    // Once the client is gone, whatever broke is a consequence of that: report the abort, log nothing alarming.
    const map = (e: unknown) => (req.signal.aborted && !(e instanceof ConnectError) ? ConnectError.from(req.signal.reason) : toConnectError(e, log, context));
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: mapStreamErrors(res.message, map) };
    } catch (err) {
      throw map(err);
    }
  };
}

async function* mapStreamErrors<T>(source: AsyncIterable<T>, map: (e: unknown) => ConnectError): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (err) {
    throw map(err);
  }
}

/**
 * Typed errors. Every failed call rejects with a subclass of SandboxdError
 * carrying the gRPC status `code` and the server's message; `toSandboxdError`
 * is the one place where connect's ConnectError is mapped.
 */
import { Code, ConnectError } from "@connectrpc/connect";

export { Code };

/** Base class of every error this library throws for a failed call. */
export class SandboxdError extends Error {
  /** The gRPC status code. */
  readonly code: Code;
  /** The server's message, without the "[code]" prefix. */
  readonly rawMessage: string;

  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(`[${codeName(code)}] ${message}`, options);
    this.name = new.target.name;
    this.code = code;
    this.rawMessage = message;
  }
}

export class CanceledError extends SandboxdError {}
export class UnknownError extends SandboxdError {}
export class InvalidArgumentError extends SandboxdError {}
export class DeadlineExceededError extends SandboxdError {}
export class NotFoundError extends SandboxdError {}
export class AlreadyExistsError extends SandboxdError {}
export class PermissionDeniedError extends SandboxdError {}
export class ResourceExhaustedError extends SandboxdError {}
export class FailedPreconditionError extends SandboxdError {}
export class AbortedError extends SandboxdError {}
export class OutOfRangeError extends SandboxdError {}
export class UnimplementedError extends SandboxdError {}
export class InternalError extends SandboxdError {}
export class UnavailableError extends SandboxdError {}
export class DataLossError extends SandboxdError {}
export class UnauthenticatedError extends SandboxdError {}

/**
 * Bytes did not match their checksum or size (an upload's or download's
 * sha256, a download's length). Code DATA_LOSS.
 */
export class IntegrityError extends DataLossError {}

const classes: Record<Code, new (code: Code, message: string, options?: { cause?: unknown }) => SandboxdError> = {
  [Code.Canceled]: CanceledError,
  [Code.Unknown]: UnknownError,
  [Code.InvalidArgument]: InvalidArgumentError,
  [Code.DeadlineExceeded]: DeadlineExceededError,
  [Code.NotFound]: NotFoundError,
  [Code.AlreadyExists]: AlreadyExistsError,
  [Code.PermissionDenied]: PermissionDeniedError,
  [Code.ResourceExhausted]: ResourceExhaustedError,
  [Code.FailedPrecondition]: FailedPreconditionError,
  [Code.Aborted]: AbortedError,
  [Code.OutOfRange]: OutOfRangeError,
  [Code.Unimplemented]: UnimplementedError,
  [Code.Internal]: InternalError,
  [Code.Unavailable]: UnavailableError,
  [Code.DataLoss]: DataLossError,
  [Code.Unauthenticated]: UnauthenticatedError,
};

/** "NOT_FOUND" for Code.NotFound. */
export function codeName(code: Code): string {
  return (Code[code] ?? String(code)).replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** A SandboxdError of the class for `code`. */
export function errorForCode(code: Code, message: string, cause?: unknown): SandboxdError {
  const Cls = classes[code] ?? UnknownError;
  return new Cls(code, message, cause === undefined ? undefined : { cause });
}

/**
 * Maps what a connect call threw to a SandboxdError (a ConnectError, an
 * AbortError, a network error); a SandboxdError or CommandError is returned
 * as it is; other errors of this library's own making (a local file that
 * cannot be read) too.
 */
export function toSandboxdError(err: unknown): unknown {
  if (err instanceof SandboxdError) return err;
  if (err instanceof ConnectError) {
    // An HTTP/2 stream the server refused (REFUSED_STREAM, as at a GOAWAY) was never processed
    // (RFC 9113 §8.7), so it is safe to retry; connect-node reports it as INTERNAL.
    if (err.code === Code.Internal && err.rawMessage.includes("NGHTTP2_REFUSED_STREAM")) return errorForCode(Code.Unavailable, err.rawMessage, err);
    return errorForCode(err.code, err.rawMessage, err);
  }
  if (err instanceof Error && err.name === "AbortError") return errorForCode(Code.Canceled, err.message, err);
  return err;
}

/** Whether `err` is a SandboxdError with the given code. */
export function hasCode(err: unknown, code: Code): boolean {
  return err instanceof SandboxdError && err.code === code;
}

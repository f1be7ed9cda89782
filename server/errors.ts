/**
 * Typed errors raised by the control plane (providers) and the data plane (ssh).
 * Each carries a `kind` that the API layer maps to a gRPC status code in one
 * place; nothing below the API knows about gRPC.
 */
export type SandboxErrorKind =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "out_of_range"
  | "failed_precondition"
  | "permission_denied"
  | "unauthenticated"
  | "resource_exhausted"
  | "unavailable"
  | "deadline_exceeded"
  | "cancelled"
  | "internal";

export class SandboxError extends Error {
  override readonly name = "SandboxError";
  constructor(
    readonly kind: SandboxErrorKind,
    message: string,
    /** For invalid_argument: the request field at fault. */
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const invalidArgument = (field: string, message: string) =>
  new SandboxError("invalid_argument", `${field}: ${message}`, field);
export const notFound = (message: string) => new SandboxError("not_found", message);
export const alreadyExists = (message: string) => new SandboxError("already_exists", message);
export const outOfRange = (message: string) => new SandboxError("out_of_range", message);
export const failedPrecondition = (message: string) => new SandboxError("failed_precondition", message);
export const resourceExhausted = (message: string) => new SandboxError("resource_exhausted", message);
export const unavailable = (message: string, cause?: unknown) =>
  new SandboxError("unavailable", message, undefined, { cause });
export const permissionDenied = (message: string) => new SandboxError("permission_denied", message);
export const unauthenticated = (message: string) => new SandboxError("unauthenticated", message);
export const deadlineExceeded = (message: string) => new SandboxError("deadline_exceeded", message);
export const cancelled = (message: string) => new SandboxError("cancelled", message);
export const internal = (message: string, cause?: unknown) =>
  new SandboxError("internal", message, undefined, { cause });

export function isSandboxError(e: unknown, kind?: SandboxErrorKind): e is SandboxError {
  return e instanceof SandboxError && (kind === undefined || e.kind === kind);
}

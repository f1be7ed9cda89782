/**
 * @sandboxd/client: a TypeScript client for sandboxd.
 *
 *   await using sb = await new SandboxdClient().create({ ttlMs: 60_000 });
 *   const r = await sb.run("echo hi", { check: true });
 */
import "./private/polyfill.js";

export { SandboxdClient, type SandboxdClientOptions, type CreateOptions, type ListOptions } from "./client.js";
export { Sandbox, type SandboxInfo, type SandboxState, type LeaseOptions } from "./sandbox.js";
export {
  CommandError,
  KeptCommand,
  TextStream,
  decodeText,
  type AttachOptions,
  type Cmd,
  type CommandInfo,
  type CommandResult,
  type ExecEvent,
  type ExecOptions,
  type ExitInfo,
  type ExitReason,
  type KeptOptions,
  type RunOptions,
  type TextEvent,
} from "./commands.js";
export {
  type DownloadArchiveOptions,
  type DownloadArchiveResult,
  type DownloadDest,
  type DownloadOptions,
  type DownloadResult,
  type UploadArchiveOptions,
  type UploadArchiveResult,
  type UploadOptions,
  type UploadResult,
  type UploadSource,
} from "./files.js";
export { Watcher, type FileInfo, type FileKind, type WatchEvent, type WatchEventKind } from "./fs.js";
export {
  Code,
  SandboxdError,
  AbortedError,
  AlreadyExistsError,
  CanceledError,
  DataLossError,
  DeadlineExceededError,
  FailedPreconditionError,
  IntegrityError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  OutOfRangeError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
  UnknownError,
  codeName,
  toSandboxdError,
} from "./errors.js";
export type { CallOptions } from "./private/context.js";
export type { RetryOptions } from "./private/retry.js";
export type { TlsOptions } from "./private/transport.js";
export { CHUNK_SIZE } from "./private/io.js";

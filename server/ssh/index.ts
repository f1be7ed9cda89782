/**
 * The SSH data plane: commands and files in sandboxes over pooled,
 * host-key-pinned ssh2 connections. Errors are SandboxErrors (server/errors.ts).
 */
export { SessionRegistry } from "./session-registry.js";
export type { ChannelOptions, Opened, SessionRegistryOptions, TargetResolver } from "./session-registry.js";
export type { ConnectionOptions } from "./connection.js";
export { exec } from "./exec.js";
export { execCollect } from "./exec-collect.js";
export type { CollectedExec } from "./exec-collect.js";
export type { ExecEvent, ExecOptions, ExecStream, ExitedEvent, ExitReason } from "./exec-types.js";
export type { CommandSpec } from "./command-line.js";
export { MAX_COMMAND_BYTES, SESSION_MARK, quote } from "./command-line.js";
export { upload } from "./upload.js";
export type { UploadOptions, UploadResult } from "./upload.js";
export { download } from "./download.js";
export type { DownloadEvent, DownloadOptions } from "./download.js";
export { fingerprint, parseHostKey } from "./host-key.js";
export { sshBindingAvailable } from "./binding.js";

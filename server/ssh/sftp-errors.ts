/**
 * Maps SFTP status errors to typed SandboxErrors. OpenSSH's sftp-server maps
 * errno coarsely: ENOENT → NO_SUCH_FILE, EACCES/EPERM → PERMISSION_DENIED,
 * and nearly everything else (ENOSPC, EISDIR, ENOTDIR, EDQUOT) → FAILURE,
 * so callers refine FAILURE with what they know (see upload.ts for ENOSPC).
 */
import { isSandboxError, notFound, permissionDenied, SandboxError, unavailable } from "../errors.js";

export const SFTP_STATUS = {
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

export function sftpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

/** Converts an ssh2 SFTP error for `op` on `path`; SandboxErrors pass through. */
export function sftpError(err: unknown, op: string, path: string): SandboxError {
  if (isSandboxError(err)) return err;
  const p = JSON.stringify(path);
  const message = err instanceof Error ? err.message : String(err);
  switch (sftpCode(err)) {
    case SFTP_STATUS.NO_SUCH_FILE:
      return notFound(`${op} ${p}: no such file or directory`);
    case SFTP_STATUS.PERMISSION_DENIED:
      return permissionDenied(`${op} ${p}: permission denied`);
    case SFTP_STATUS.NO_CONNECTION:
    case SFTP_STATUS.CONNECTION_LOST:
      return unavailable(`${op} ${p}: SFTP connection lost`, err);
    case SFTP_STATUS.OP_UNSUPPORTED:
      return new SandboxError("failed_precondition", `${op} ${p}: not supported by the sandbox's SFTP server`);
    case SFTP_STATUS.BAD_MESSAGE:
      return new SandboxError("invalid_argument", `${op} ${p}: rejected by the SFTP server (${message})`, "path");
    case SFTP_STATUS.FAILURE:
      return new SandboxError("internal", `${op} ${p}: ${message}`, undefined, { cause: err });
  }
  // ssh2 fails outstanding requests with plain errors when the channel or connection goes away.
  if (/No response from server|Not connected|closed|ECONNRESET/i.test(message)) {
    return unavailable(`${op} ${p}: SFTP session lost (${message})`, err);
  }
  return new SandboxError("internal", `${op} ${p}: ${message}`, undefined, { cause: err });
}

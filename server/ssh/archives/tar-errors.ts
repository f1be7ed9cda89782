/**
 * What a failed `tar` in the sandbox means, from its exit status and last
 * stderr line (GNU tar's messages, LC_ALL=C). The text comes from the
 * sandbox: it is bounded and stripped before it reaches a client.
 */
import {
  failedPrecondition, internal, invalidArgument, permissionDenied, resourceExhausted, type SandboxError,
} from "../../errors.js";

/** `sh`'s status for a command it cannot find. */
const NOT_FOUND = 127;

export function tarFailure(op: string, path: string, exitCode: number | null, stderr: Buffer): SandboxError {
  const lines = stderr.toString("utf8").replace(/[^\x20-\x7e\n]/g, "?").trim().split("\n");
  const text = lines.filter((l) => !/^tar: Exiting with failure status/.test(l)).pop()?.slice(0, 300) ?? "";
  const where = `${op} ${JSON.stringify(path)}`;
  if (exitCode === NOT_FOUND) return failedPrecondition(`${where}: the sandbox has no tar (its template needs GNU tar)`);
  // A short write to a regular file ("Wrote only 512 of 10240 bytes") is a full disk or quota.
  if (/No space left on device|Disk quota exceeded|Wrote only \d+ of \d+ bytes/.test(text)) return resourceExhausted(`${where}: no space or inodes left on the sandbox's disk`);
  if (/Read-only file system/.test(text)) return failedPrecondition(`${where}: read-only file system`);
  if (/Permission denied/.test(text)) return permissionDenied(`${where}: ${text}`);
  if (/Cannot hard link|does not look like a tar archive|Unexpected EOF|Skipping to next header|Archive contains/.test(text)) {
    return invalidArgument("data", `the archive is not valid: ${text}`);
  }
  return internal(`${where}: tar exited ${exitCode}${text ? `: ${text}` : ""}`);
}

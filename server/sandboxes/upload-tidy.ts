/**
 * Removes the temp files of uploads cut off by a crash of sandboxd (the
 * rename into place never happened, so only hidden `.<name>.sandboxd-<hex>.part`
 * siblings remain). Runs once in a sandbox adopted from an earlier process,
 * before this process's first RPC on it, and only touches files not modified
 * since this process started: an upload another replica is writing right now
 * keeps its temp file fresh and is left alone.
 */
import type { SessionRegistry } from "../ssh/index.js";
import { execCollect } from "../ssh/index.js";
import { TEMP_SUFFIX_PATTERN } from "../ssh/upload.js";

/** Every writable, real file system the sandbox sees: only there can a temp file be. */
const WRITABLE_MOUNTS = String.raw`awk '$4 ~ /^rw(,|$)/ && $3 !~ /^(proc|sysfs|devpts|cgroup2?|mqueue|securityfs|debugfs|tracefs|fusectl|configfs|pstore|bpf|autofs|binfmt_misc|hugetlbfs)$/ && $2 !~ /\\/ {print $2}' /proc/self/mounts`;

export function tidyCommand(startedAtMs: number): string {
  const since = Math.floor(startedAtMs / 1000);
  return `find $(${WRITABLE_MOUNTS}) -xdev -type f -name '${TEMP_SUFFIX_PATTERN}' ! -newermt @${since} -delete 2>/dev/null; exit 0`;
}

export async function tidyUploads(registry: SessionRegistry, sandboxId: string, startedAtMs: number): Promise<void> {
  await execCollect(registry, sandboxId, { shell: tidyCommand(startedAtMs), timeoutMs: 30_000, maxStdoutBytes: 4096, maxStderrBytes: 4096 });
}

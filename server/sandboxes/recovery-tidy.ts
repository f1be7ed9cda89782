/**
 * What a crash of sandboxd leaves inside a sandbox, removed before the first
 * RPC a restarted sandboxd makes on a sandbox it adopted:
 *
 * - Commands still running when their SSH session died: sshd does not signal
 *   them, so they would run on unowned. Each command carries the mark
 *   SANDBOXD_SESSION="<sshd pid>:<its own pid>" (server/ssh/command-line.ts);
 *   one that is still its own process-group leader but whose parent is no
 *   longer that sshd lost its session, and its whole group is killed. What
 *   such a command's children daemonised (setsid) into other groups, what a
 *   command that finished left running, and commands of live sessions (another
 *   replica's) are not touched.
 * - Upload temp files (`.<name>.sandboxd-<hex>.part` beside the target) whose
 *   rename into place never happened. Only files not modified since this
 *   process started go: an upload another replica is writing keeps its temp
 *   file fresh.
 * - Archive staging directories (`.<name>.sandboxd-archive-<hex>`, and the
 *   `-old` tree a replace swapped out) that were never renamed into place or
 *   removed: only those in which nothing changed since this process started
 *   (an archive another replica is unpacking keeps writing into its own).
 *
 * It runs once per adopted sandbox, on first use (not at start: a restarted
 * sandboxd holding 1,000 sandboxes does not open 1,000 SSH connections).
 */
import type { SessionRegistry } from "../ssh/index.js";
import { SESSION_MARK, execCollect } from "../ssh/index.js";
import { ARCHIVE_TEMP_MARK } from "../ssh/archives/index.js";
import { TEMP_SUFFIX_PATTERN } from "../ssh/upload.js";

/** Every writable, real file system the sandbox sees: only there can a temp file be. */
const WRITABLE_MOUNTS = String.raw`awk '$4 ~ /^rw(,|$)/ && $3 !~ /^(proc|sysfs|devpts|cgroup2?|mqueue|securityfs|debugfs|tracefs|fusectl|configfs|pstore|bpf|autofs|binfmt_misc|hugetlbfs)$/ && $2 !~ /\\/ {print $2}' /proc/self/mounts`;

/** POSIX sh: kills the process groups of marked commands whose session is gone; prints "killed <pid>" for each. */
const ORPHAN_KILL = [
  `for f in $(grep -l -a -s '${SESSION_MARK}=' /proc/[0-9]*/environ); do`,
  `  d=\${f%/environ}; p=\${d#/proc/}`,
  `  m=$(tr '\\0' '\\n' < "$f" 2>/dev/null | sed -n 's/^${SESSION_MARK}=\\([0-9]*\\):\\([0-9]*\\)$/\\1 \\2/p' | head -n 1)`,
  `  [ -n "$m" ] || continue; set -- $m; sshd=$1; self=$2`,
  `  [ "$self" = "$p" ] || continue`,
  `  read -r st < "$d/stat" 2>/dev/null || continue; st=\${st##*) }; set -- $st`,
  `  [ "$3" = "$p" ] && [ "$2" != "$sshd" ] || continue`,
  `  kill -KILL -- "-$p" 2>/dev/null && echo "killed $p"`,
  `done`,
].join("\n");

export function tidyCommand(startedAtMs: number): string {
  const since = Math.floor(startedAtMs / 1000);
  // Names go to the inner sh as arguments (-exec … {} +), never through a pipe: a name with a newline stays one name.
  const staleArchives = `find $(${WRITABLE_MOUNTS}) -xdev -type d -name '.*.${ARCHIVE_TEMP_MARK}-????????????*' -prune ` +
    `-exec sh -c 'for d; do [ -z "$(find "$d" -newermt @${since} -print 2>/dev/null | head -n 1)" ] && rm -rf -- "$d"; done' sh {} + 2>/dev/null`;
  return `${ORPHAN_KILL}\nfind $(${WRITABLE_MOUNTS}) -xdev -type f -name '${TEMP_SUFFIX_PATTERN}' ! -newermt @${since} -delete 2>/dev/null\n${staleArchives}; exit 0`;
}

export async function tidyAfterCrash(registry: SessionRegistry, sandboxId: string, startedAtMs: number): Promise<void> {
  await execCollect(registry, sandboxId, { shell: tidyCommand(startedAtMs), timeoutMs: 30_000, maxStdoutBytes: 65_536, maxStderrBytes: 4096, onOutputLimit: "discard" });
}

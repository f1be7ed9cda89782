/**
 * Host plumbing shared by the local runtime: one helper to run host commands,
 * small /proc and file helpers, and the login shell of the jails' `sandbox` user.
 */
import { spawn } from "node:child_process";
import { promises as fs, writeFileSync } from "node:fs";

/** Commands are looked up here whatever PATH the service was started with (sbin tools). */
export const HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** A host command that failed: carries the command line and its stderr for the logs. */
export class HostCommandError extends Error {
  override readonly name = "HostCommandError";
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly signal: string | null = null,
  ) {
    super(`${command}: ${signal ? `killed by ${signal}` : `exit ${exitCode}`}${stderr ? `: ${stderr.trim()}` : ""}`);
  }
}

export interface RunOptions {
  /** Written to the command's stdin (e.g. an `ip -batch -` or `nft -f -` script). */
  input?: string;
  timeoutMs?: number;
}

/** Runs a host command to completion; resolves its stdout, rejects with HostCommandError. */
export function run(cmd: string, args: string[], options: RunOptions = {}): Promise<string> {
  const line = [cmd, ...args].join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { PATH: HOST_PATH, LC_ALL: "C" },
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on("data", (b: Buffer) => out.push(b));
    child.stderr!.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new HostCommandError(line, null, e.message));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString();
      if (code === 0) resolve(Buffer.concat(out).toString());
      else reject(new HostCommandError(line, code, stderr, signal));
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

export { sleep } from "../../sleep.js";

export async function exists(path: string): Promise<boolean> {
  try {
    await fs.access(path);
    return true;
  } catch {
    return false;
  }
}

export async function readText(path: string): Promise<string | undefined> {
  try {
    return await fs.readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Writes a control file (cgroup, /proc/sys); errors propagate with the path in the message. */
export async function writeControl(path: string, value: string): Promise<void> {
  try {
    await fs.writeFile(path, value);
  } catch (e) {
    throw new Error(`write ${JSON.stringify(value)} to ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** writeControl for the few places that must not yield (cgroups.ts). */
export function writeControlSync(path: string, value: string): void {
  try {
    writeFileSync(path, value);
  } catch (e) {
    throw new Error(`write ${JSON.stringify(value)} to ${path}: ${(e as Error).message}`, { cause: e });
  }
}

export function killPid(pid: number, signal: NodeJS.Signals = "SIGKILL"): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Pids as listed in /proc. */
export async function allPids(): Promise<number[]> {
  const names = await fs.readdir("/proc");
  return names.filter((n) => /^\d+$/.test(n)).map(Number);
}

/**
 * The sandbox user's login shell inside the jails' generated passwd
 * (jail-root.ts): /bin/sh, not bash. sshd runs every session's command (the
 * ForceCommand too) as `<login shell> -c`, and Debian's bash then sources
 * ~/.bashrc (it sees SSH_CLIENT), a file the sandbox writes, before anything
 * of sandboxd's runs. dash reads no file for -c. Interactive logins still get
 * `bash -l` from the jail's enter script. No host account is created or
 * changed: the jails never read the host's passwd.
 */
export const SANDBOX_SHELL = "/bin/sh";

/** Start time of a process (clock ticks since boot, /proc/<pid>/stat field 22): with the pid, it names one process for good. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  const stat = await readText(`/proc/${pid}/stat`);
  return stat?.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}

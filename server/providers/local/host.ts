/**
 * Host plumbing shared by the local runtime: one helper to run host commands,
 * small /proc and file helpers, and the `sandbox` user every jail logs in as.
 */
import { spawn } from "node:child_process";
import { promises as fs } from "node:fs";

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

export interface HostUser {
  name: string;
  uid: number;
  gid: number;
}

export const SANDBOX_USER = "sandbox";

async function lookupUser(name: string): Promise<(HostUser & { home: string; shell: string }) | undefined> {
  const passwd = (await readText("/etc/passwd")) ?? "";
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 7) return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, shell: f[6]! };
  }
  return undefined;
}

/**
 * Ensures the host user `sandbox` exists (its passwd entry is what sshd in every
 * jail sees through the read-only host root). Its password field must be `*`:
 * sshd with UsePAM no refuses `!`-locked accounts even for key logins.
 *
 * Its login shell is /bin/sh, not bash: sshd runs every session's command
 * (the ForceCommand too) as `<login shell> -c`, and Debian's bash then sources
 * ~/.bashrc (it sees SSH_CLIENT), a file the sandbox writes, before anything
 * of sandboxd's runs. dash reads no file for -c. Interactive logins still get
 * `bash -l` from the jail's enter script.
 */
export const SANDBOX_SHELL = "/bin/sh";

export async function ensureSandboxUser(): Promise<HostUser> {
  let user = await lookupUser(SANDBOX_USER);
  if (!user) {
    try {
      await run("useradd", ["-M", "-d", "/home/sandbox", "-s", SANDBOX_SHELL, "-U", "-p", "*", SANDBOX_USER]);
    } catch (e) {
      // Another instance may have added it at the same moment.
      if (!(await lookupUser(SANDBOX_USER))) throw e;
    }
    user = await lookupUser(SANDBOX_USER);
    if (!user) throw new Error("useradd sandbox: user still missing");
  }
  // Jails bind their disk over /home, so the home must be /home/sandbox. (-d only when it
  // differs: usermod refuses -d while the user has processes, as in running sandboxes.)
  const fix = [
    ...(user.home !== "/home/sandbox" ? ["-d", "/home/sandbox"] : []),
    ...(user.shell !== SANDBOX_SHELL ? ["-s", SANDBOX_SHELL] : []),
  ];
  if (fix.length > 0) await run("usermod", [...fix, SANDBOX_USER]);
  const shadow = (await readText("/etc/shadow")) ?? "";
  const entry = shadow.split("\n").find((l) => l.startsWith(`${SANDBOX_USER}:`));
  if (entry && entry.split(":")[1] !== "*") await run("usermod", ["-p", "*", SANDBOX_USER]);
  return { name: user.name, uid: user.uid, gid: user.gid };
}

/** Start time of a process (clock ticks since boot, /proc/<pid>/stat field 22): with the pid, it names one process for good. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  const stat = await readText(`/proc/${pid}/stat`);
  return stat?.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}

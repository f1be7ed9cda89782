/**
 * When a jail's sshd is ready, and which process is the jail.
 *
 * A create is ready once sshd listens on the sandbox's address, port 22.
 * That is read from the kernel, not probed: the listening sockets of the
 * sandbox's network namespace are in /proc/<launcher>/net/tcp (the launcher
 * sits in that namespace once it entered it). A probe connection would make
 * sshd start a session process for nothing (about 10 ms of CPU) and wait for
 * its banner. Nothing but sandboxd's launcher and sshd runs in the namespace
 * before the create returns, so the only listener on <address>:22 is sshd.
 */
import type { ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import { readText, sleep } from "./host.js";
import { sshBannerAnswers } from "../../ssh/banner.js";

/** One attempt: connects to address:22 and waits for an SSH banner. */
export function sshdAnswers(address: string, timeoutMs = 1000): Promise<boolean> {
  return sshBannerAnswers(address, 22, timeoutMs);
}

/** "198.18.0.2" as /proc/net/tcp writes it with port 22: "020012C6:0016" (the address in host byte order). */
export function procNetTcpKey(address: string): string {
  const hex = address.split(".").map((o) => Number(o).toString(16).padStart(2, "0").toUpperCase()).reverse().join("");
  return `${hex}:0016`;
}

/** Whether /proc/net/tcp text lists a socket in LISTEN (state 0A) on `key`. */
export function listensOn(procNetTcp: string, key: string): boolean {
  return procNetTcp.split("\n").some((line) => {
    const f = line.trim().split(/\s+/);
    return f[1] === key && f[3] === "0A";
  });
}

/**
 * Polls until sshd listens in the sandbox's namespace (`netnsPath`). Fails
 * early if the launcher exits (its log says why), when `signal` aborts, or
 * after timeoutMs.
 */
export async function waitForSshd(
  address: string,
  netnsPath: string,
  child: ChildProcess,
  logPath: string,
  signal: AbortSignal,
  timeoutMs = 15_000,
): Promise<void> {
  const key = procNetTcpKey(address);
  const netnsIno = (await fs.stat(netnsPath)).ino;
  let inside = false;
  let exited: string | undefined;
  const onExit = (code: number | null, sig: string | null) => (exited = sig ?? `exit ${code}`);
  child.once("exit", onExit);
  if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode);
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      signal.throwIfAborted();
      if (exited) throw new Error(`jail exited (${exited}): ${((await readText(logPath)) ?? "").trim().slice(-2000)}`);
      // Until the launcher has entered the namespace its /proc/<pid>/net is the host's.
      inside ||= (await fs.stat(`/proc/${child.pid}/ns/net`).catch(() => undefined))?.ino === netnsIno;
      if (inside && listensOn((await readText(`/proc/${child.pid}/net/tcp`)) ?? "", key)) return;
      if (Date.now() > deadline) throw new Error(`sshd did not listen within ${timeoutMs} ms`);
      await sleep(1);
    }
  } finally {
    child.off("exit", onExit);
  }
}

/** Among the given pids, the jail's init: the process that is pid 1 of its pid namespace (NSpid ends in 1). */
export async function findJailInit(pids: number[]): Promise<number | undefined> {
  for (const pid of pids) {
    const status = (await readText(`/proc/${pid}/status`)) ?? "";
    const ns = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
    if (ns && ns.length === 2 && ns[1] === "1") return pid;
  }
  return undefined;
}

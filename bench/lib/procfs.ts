/**
 * What the benchmark reads from /proc: a process's CPU time (to measure the
 * sandboxd child from outside, as an operator's `top` would) and the host's
 * TCP sockets (to prove nothing connected to an address that must not be).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc's CPU figures (`getconf CLK_TCK`, 100 on Linux almost always). */
export function clockTicks(): number {
  try {
    const hz = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    if (Number.isInteger(hz) && hz > 0) return hz;
  } catch {
    /* getconf missing: fall through */
  }
  return 100;
}

/** User + system CPU seconds the process (all its threads) has used, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number, hz: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(rest[11]); // field 14
  const stime = Number(rest[12]); // field 15
  return (utime + stime) / hz;
}

/** CPU of a process as % of one core between two cpuSeconds readings. */
export const cpuPercent = (cpuBefore: number, cpuAfter: number, wallMs: number) => ((cpuAfter - cpuBefore) / (wallMs / 1000)) * 100;

/**
 * IPv4 TCP sockets of this network namespace (any state, SYN_SENT included)
 * whose remote address starts with the given octets, e.g. [198, 19].
 */
export function tcpPeersIn(prefix: number[]): string[] {
  const found: string[] = [];
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const remote = line.trim().split(/\s+/)[2];
    if (!remote) continue;
    const [hex, port] = remote.split(":");
    // /proc/net/tcp prints the address as a host-order (little-endian) 32-bit number.
    const ip = [3, 2, 1, 0].map((i) => parseInt(hex!.slice(i * 2, i * 2 + 2), 16));
    if (prefix.every((o, i) => ip[i] === o)) found.push(`${ip.join(".")}:${parseInt(port!, 16)}`);
  }
  return found;
}

/**
 * What a sandbox may reach beyond its host, independent of the provider:
 * the non-public ranges denied by default, the server-wide egress policy
 * (SANDBOXD_EGRESS_*), and per-sandbox allowlist entries. Addresses are IPv4
 * only (sandboxes have no IPv6).
 *
 * "Internet on" means the public internet: every destination outside the
 * ranges below. An allowlist entry opens one private destination (a CIDR,
 * or an address or CIDR with a port) to one sandbox.
 */

/**
 * Never "the internet": unspecified, RFC 1918, CGNAT, loopback, link-local
 * (cloud metadata 169.254.169.254), IETF protocol assignments, the three
 * documentation nets, benchmarking (198.18.0.0/15: every sandbox network and
 * its host side), multicast and reserved/broadcast.
 */
export const NON_PUBLIC: readonly string[] = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/4",
  "240.0.0.0/4",
];

/** DNS: always allowed with internet on, also when ports are restricted (to the host's resolvers too). */
export const DNS_PORT = 53;

/** The server-wide egress settings (SANDBOXD_EGRESS_*). */
export interface EgressPolicy {
  /** Denied on top of NON_PUBLIC; no per-sandbox allowlist entry opens them (only `allow` does). */
  deny: string[];
  /** Taken out of every deny (NON_PUBLIC, the host's networks, `deny`): reached like the public internet. */
  allow: string[];
  /** TCP/UDP destination ports a sandbox with internet on may use (DNS always); undefined: any port, any protocol. */
  ports?: PortRange[];
  /** New connections per second per sandbox (a burst of as many at once); 0: unlimited. */
  newConnRate: number;
}

export const DEFAULT_EGRESS_POLICY: EgressPolicy = { deny: [], allow: [], newConnRate: 50 };

export type PortRange = [number, number];

/** One per-sandbox allowlist entry: a CIDR, with a port (TCP and UDP) or for any protocol and port. */
export interface EgressEntry {
  cidr: string;
  port?: number;
}

export class EgressSyntaxError extends Error {
  override readonly name = "EgressSyntaxError";
}

export function ipToInt(ip: string): number {
  const parts = ip.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new EgressSyntaxError(`not an IPv4 address: ${JSON.stringify(ip)}`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

/** "a.b.c.d/len" or a bare address (/32) → the canonical "a.b.c.d/len"; host bits must be zero. */
export function parseCidr(s: string): string {
  const m = /^([^/]+)(?:\/(\d{1,2}))?$/.exec(s.trim());
  if (!m) throw new EgressSyntaxError(`not a CIDR: ${JSON.stringify(s)}`);
  const addr = ipToInt(m[1]!);
  const len = m[2] === undefined ? 32 : Number(m[2]);
  if (len > 32) throw new EgressSyntaxError(`${s}: prefix length above 32`);
  const size = 2 ** (32 - len);
  if (addr % size !== 0) throw new EgressSyntaxError(`${s}: host bits set (the network is ${intToIp(addr - (addr % size))}/${len})`);
  return `${intToIp(addr)}/${len}`;
}

/** A comma-separated list of CIDRs (config). Empty → []. */
export function parseCidrList(s: string): string[] {
  return s.split(",").map((x) => x.trim()).filter((x) => x !== "").map(parseCidr);
}

/** "any" → undefined; "80,443,8000-8100" → ranges (1..65535). */
export function parsePorts(s: string): PortRange[] | undefined {
  if (s.trim().toLowerCase() === "any") return undefined;
  const ranges: PortRange[] = [];
  for (const part of s.split(",").map((x) => x.trim()).filter((x) => x !== "")) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || lo < 1 || hi > 65535 || lo > hi) throw new EgressSyntaxError(`not a port or port range 1-65535: ${JSON.stringify(part)}`);
    ranges.push([lo, hi]);
  }
  if (ranges.length === 0) throw new EgressSyntaxError(`no ports in ${JSON.stringify(s)} (use "any" for every port)`);
  return ranges;
}

/** "10.0.0.0/8", "10.1.2.3", "10.1.2.3:5432", "10.1.0.0/16:443". Host names are refused: the firewall matches addresses. */
export function parseEgressEntry(s: string): EgressEntry {
  const m = /^([0-9./]+)(?::(\d{1,5}))?$/.exec(s.trim());
  if (!m) throw new EgressSyntaxError(`${JSON.stringify(s)}: expected an IPv4 address or CIDR, optionally with :port (no host names)`);
  const cidr = parseCidr(m[1]!);
  if (m[2] === undefined) return { cidr };
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new EgressSyntaxError(`${JSON.stringify(s)}: port must be 1-65535`);
  return { cidr, port };
}

export function formatEgressEntry(e: EgressEntry): string {
  const cidr = e.cidr.endsWith("/32") ? e.cidr.slice(0, -3) : e.cidr;
  return e.port === undefined ? cidr : `${cidr}:${e.port}`;
}

export function cidrRange(cidr: string): [number, number] {
  const [a, l] = cidr.split("/");
  const start = ipToInt(a!);
  return [start, start + 2 ** (32 - Number(l ?? 32)) - 1];
}

/**
 * Disjoint, sorted ranges covering the given CIDRs (nftables interval sets
 * refuse overlapping elements), as nft elements: "a.b.c.d" or "a.b.c.d-e.f.g.h".
 */
export function mergeCidrs(cidrs: Iterable<string>): string[] {
  const ranges = [...cidrs].map(cidrRange).sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out.map(([a, b]) => (a === b ? intToIp(a) : `${intToIp(a)}-${intToIp(b)}`));
}

/** Whether an address lies in one of the CIDRs. */
export function inCidrs(address: string, cidrs: Iterable<string>): boolean {
  const n = ipToInt(address);
  for (const c of cidrs) {
    const [a, b] = cidrRange(c);
    if (n >= a && n <= b) return true;
  }
  return false;
}

/** What a per-sandbox allowlist entry may never open: the sandbox networks (198.18.0.0/15, docs/proxmox.md §2 too) and loopback. */
export const NEVER_ALLOWED: readonly string[] = ["198.18.0.0/15", "127.0.0.0/8"];

/** Whether two CIDRs share an address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const [x0, x1] = cidrRange(a);
  const [y0, y1] = cidrRange(b);
  return x0 <= y1 && y0 <= x1;
}

/**
 * A per-sandbox allowlist, checked as every provider takes it: at most 64
 * entries, each well-formed (parseEgressEntry), none overlapping
 * NEVER_ALLOWED or the server's `deny` (SANDBOXD_EGRESS_DENY); duplicates
 * dropped, order kept. The reason is an EgressSyntaxError's message: the
 * caller turns it into invalid_argument.
 */
export function checkEgressAllow(entries: readonly string[], deny: readonly string[]): EgressEntry[] {
  if (entries.length > 64) throw new EgressSyntaxError(`at most 64 entries, got ${entries.length}`);
  const out: EgressEntry[] = [];
  for (const s of entries) {
    const e = parseEgressEntry(s);
    const never = NEVER_ALLOWED.find((n) => cidrsOverlap(e.cidr, n));
    if (never) throw new EgressSyntaxError(`${s}: overlaps ${never}, which a sandbox never reaches`);
    const denied = deny.find((n) => cidrsOverlap(e.cidr, n));
    if (denied) throw new EgressSyntaxError(`${s}: overlaps ${denied}, which this server denies to every sandbox (SANDBOXD_EGRESS_DENY)`);
    if (!out.some((p) => p.cidr === e.cidr && p.port === e.port)) out.push(e);
  }
  return out;
}

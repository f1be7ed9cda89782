/**
 * The local runtime's firewall, in two layers that each hold on their own.
 *
 * 1. The host table: one nftables table per instance (family inet), whose
 *    rules only match packets entering or leaving through the instance's
 *    bridge, so unrelated host traffic is left alone.
 *    - input: from the bridge to the host only replies (ct established,related):
 *      sandboxes reach no host service (sshd included), yet host → sandbox SSH works.
 *    - forward: sandbox → sandbox refused (routed or bridged: br_netfilter sends
 *      bridged frames through this hook too); packets conntrack finds invalid
 *      dropped (a reset would kill the connection); every packet a sandbox sends
 *      beyond goes through `egress` (below), not just new flows, so a change
 *      (internet off, an allowlist entry removed) cuts open connections at the
 *      sandbox's next packet. Back to a sandbox only replies, and only to one
 *      with internet or an allowlist. A packet elsewhere claiming a sandbox's
 *      address as source is dropped (spoofed).
 *    - postrouting: masquerade what leaves the subnet through another interface.
 * 2. A guard table inside every sandbox's network namespace (output and
 *    input hooks) with the same egress decision for that one sandbox, written
 *    before its jail starts. `nft flush ruleset` on the host, an nftables
 *    service reload or a deleted host table do not reach it, and the sandbox
 *    cannot change it (no CAP_NET_ADMIN). It refuses new connections to the
 *    host and to this instance's subnet outright, and lets in only what the
 *    host (the gateway) opens and replies. The bridge ports are isolated too
 *    (network.ts), and the runtime re-checks and restores the host table
 *    (isolation.ts).
 *
 * The egress decision, for a packet from sandbox S to D:
 *   D in SANDBOXD_EGRESS_ALLOW      → as the public internet (below)
 *   D in SANDBOXD_EGRESS_DENY       → refused (no allowlist opens it)
 *   D matches S's allowlist entry   → allowed (CIDR, or CIDR + TCP/UDP port), internet on or off
 *   D is one of the host's resolvers, TCP/UDP port 53 → as the public internet
 *   D is not public (NON_PUBLIC in ../egress.ts, the host's addresses and
 *     the networks it is connected to) → refused
 *   otherwise (the public internet): allowed only with internet on, only to
 *     SANDBOXD_EGRESS_PORTS (DNS always) when set.
 * Allowed new connections count against SANDBOXD_EGRESS_NEW_CONN_RATE (per
 * sandbox, host table); past it new connections are dropped, not refused, so
 * TCP simply retries its SYN a second later instead of failing.
 *
 * What a sandbox may not send is refused, not silently dropped, so `pip
 * install` or `git clone` fail fast instead of waiting for a connect timeout
 * per address: TCP gets a reset (connect fails at once with "connection
 * refused"); anything else fails at once in the sandbox's own stack (the guard
 * drops it on output, so the send returns EPERM, "operation not permitted";
 * no ICMP budget is involved). Should only the host table remain, it answers
 * with ICMP "administratively prohibited" (EHOSTUNREACH), rate-limited by the
 * kernel per destination. Traffic from outside towards a sandbox is dropped
 * silently: nothing is sent out on its behalf.
 */
import { promises as fs } from "node:fs";
import { DNS_PORT, NON_PUBLIC, cidrRange, formatEgressEntry, intToIp, mergeCidrs, type EgressEntry, type EgressPolicy } from "../egress.js";
import { run } from "./host.js";
import type { Logger } from "./options.js";

/** What the egress decision needs to know about the host; re-read by the periodic check. */
export interface HostFacts {
  /** The host's own IPv4 addresses: never reachable from a sandbox. */
  addresses: string[];
  /** The networks the host is connected to (its LANs): not the public internet. */
  networks: string[];
  /** The IPv4 nameservers of the resolv.conf sandboxes see (the host's): DNS to them works with internet on. */
  resolvers: string[];
}

export async function readHostFacts(resolvConf = "/etc/resolv.conf"): Promise<HostFacts> {
  const addresses = new Set<string>();
  const networks = new Set<string>();
  // From the kernel, not os.networkInterfaces(): that skips interfaces that are not up and
  // running (a bridge without ports), whose addresses are the host's all the same.
  const links = JSON.parse(await run("ip", ["-j", "-4", "addr", "show"])) as Array<{ addr_info?: Array<{ local?: string; prefixlen?: number }> }>;
  for (const link of links) {
    for (const a of link.addr_info ?? []) {
      if (!a.local || a.prefixlen === undefined) continue;
      addresses.add(a.local);
      const [start] = cidrRange(`${a.local}/32`);
      const size = 2 ** (32 - a.prefixlen);
      networks.add(`${intToIp(start - (start % size))}/${a.prefixlen}`);
    }
  }
  const text = await fs.readFile(resolvConf, "utf8").catch(() => "");
  const resolvers = new Set(
    [...text.matchAll(/^\s*nameserver\s+(\d{1,3}(?:\.\d{1,3}){3})\s*$/gm)].map((m) => m[1]!).filter((a) => !a.startsWith("127.")),
  );
  const sorted = (x: Set<string>) => [...x].sort();
  return { addresses: sorted(addresses), networks: sorted(networks), resolvers: sorted(resolvers) };
}

/** What the firewall holds for one sandbox. */
export interface SandboxEgress {
  internet: boolean;
  allow: EgressEntry[];
}

interface Member extends SandboxEgress {
  /** Set once the sandbox's namespace exists: its guard is written from then on. */
  netns?: string;
  /** Host set elements last written for it (so a change removes exactly those). */
  applied: Elements;
}

interface Elements {
  internet: boolean;
  allowers: boolean;
  nets: string[];
  services: string[];
}

const NO_ELEMENTS: Elements = { internet: false, allowers: false, nets: [], services: [] };

export const GUARD_TABLE = "sandboxd_guard";

/** Sets holding per-sandbox state that changes at runtime; the periodic check compares them with what is wanted. */
const MEMBER_SETS = ["internet", "allowers"] as const;
const DYNAMIC_SETS = ["new_conns"];

export interface FirewallOptions {
  table: string;
  bridge: string;
  /** The instance's subnet (CIDR) and its gateway (the bridge's address). */
  subnet: string;
  gateway: string;
  policy: EgressPolicy;
  /** Default: readHostFacts(). */
  readFacts?: () => Promise<HostFacts>;
  log?: Logger;
}

const els = (list: readonly string[]) => (list.length ? `elements = { ${list.join(", ")} }` : "");

/**
 * `nft -j list table` output without what changes on its own (handles,
 * metainfo, the elements of dynamic sets); the elements of `memberSets`
 * separately, as sorted strings.
 */
function normalise(json: string, memberSets: readonly string[], dynamicSets: readonly string[]): { fixed: string; sets: Record<string, string[]> } {
  const parsed = JSON.parse(json) as { nftables: Array<Record<string, Record<string, unknown>>> };
  const fixed: unknown[] = [];
  const sets: Record<string, string[]> = {};
  for (const o of parsed.nftables) {
    const [kind, body] = Object.entries(o)[0] ?? [];
    if (!kind || !body || kind === "metainfo") continue;
    const { handle: _h, ...rest } = body;
    if (kind === "set" && memberSets.includes(String(rest.name))) {
      sets[String(rest.name)] = ((rest.elem as unknown[] | undefined) ?? []).map(String).sort();
      delete rest.elem;
    } else if (kind === "set" && dynamicSets.includes(String(rest.name))) {
      delete rest.elem;
    }
    fixed.push({ [kind]: rest });
  }
  return { fixed: JSON.stringify(fixed), sets };
}

/** An allowlist as nft interval elements ("a.b.c.d" or "a.b.c.d-e.f.g.h"): the any-port ranges, and the ranges per port. */
function entryRanges(allow: readonly EgressEntry[]): { any: string[]; byPort: Map<number, string[]> } {
  const any = mergeCidrs(allow.filter((e) => e.port === undefined).map((e) => e.cidr));
  const byPort = new Map<number, string[]>();
  const ports = [...new Set(allow.filter((e) => e.port !== undefined).map((e) => e.port!))].sort((a, b) => a - b);
  for (const p of ports) byPort.set(p, mergeCidrs(allow.filter((e) => e.port === p).map((e) => e.cidr)));
  return { any, byPort };
}

export class Firewall {
  readonly table: string;
  private readonly o: FirewallOptions;
  private readonly sandboxes = new Map<string, Member>();
  private facts: HostFacts = { addresses: [], networks: [], resolvers: [] };
  private factsRead = false;
  /** The table as listed after our last structural change (rules, static sets): what verify() expects. */
  private reference?: string;
  /** Host table operations, one at a time. */
  private hostQueue: Promise<unknown> = Promise.resolve();
  /** Guard writes per sandbox, one at a time each; each writes the state current when it runs. */
  private readonly guardQueues = new Map<string, Promise<void>>();
  /** A guard as written (its nft text) → as nft lists it back, normalised: what checkGuards() expects. */
  private readonly guardRefs = new Map<string, string>();
  private guardCursor = 0;

  constructor(options: FirewallOptions) {
    this.o = options;
    this.table = options.table;
  }

  private get policy(): EgressPolicy {
    return this.o.policy;
  }

  private host<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.hostQueue.catch(() => {}).then(fn);
    this.hostQueue = p;
    return p;
  }

  // ---- rendering -----------------------------------------------------------

  /** The end of the public chain: with SANDBOXD_EGRESS_PORTS only TCP/UDP to those ports (and DNS) go on to `target`. */
  private publicTail(target: string): string {
    const ports = this.policy.ports;
    if (!ports) return target;
    const ranges = [...ports, [DNS_PORT, DNS_PORT] as [number, number]].sort((a, b) => a[0] - b[0]);
    const merged: Array<[number, number]> = [];
    for (const r of ranges) {
      const last = merged[merged.length - 1];
      if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
      else merged.push([r[0], r[1]]);
    }
    const list = merged.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(", ");
    return `meta l4proto { tcp, udp } th dport { ${list} } ${target}\n    return`;
  }

  /** The egress policy's sets, the same in the host table and in every guard. */
  private policySets(): string {
    return `  set non_public {
    type ipv4_addr
    flags interval
    ${els(this.nonPublic())}
  }
  set operator_deny {
    type ipv4_addr
    flags interval
    ${els(mergeCidrs(this.policy.deny))}
  }
  set operator_allow {
    type ipv4_addr
    flags interval
    ${els(mergeCidrs(this.policy.allow))}
  }
  set resolvers {
    type ipv4_addr
    ${els(this.facts.resolvers)}
  }`;
  }

  private nonPublic(): string[] {
    return mergeCidrs([...NON_PUBLIC, ...this.facts.networks, ...this.facts.addresses.map((a) => `${a}/32`)]);
  }

  private wanted(address: string, m: SandboxEgress): Elements {
    const { any, byPort } = entryRanges(m.allow);
    const services: string[] = [];
    for (const [port, ranges] of byPort) for (const r of ranges) for (const proto of ["tcp", "udp"]) services.push(`${address} . ${r} . ${proto} . ${port}`);
    return { internet: m.internet, allowers: m.allow.length > 0, nets: any.map((r) => `${address} . ${r}`), services };
  }

  private hostRuleset(): string {
    const br = JSON.stringify(this.o.bridge);
    const all = [...this.sandboxes.entries()].map(([a, m]) => ({ a, w: this.wanted(a, m) }));
    const rate = this.policy.newConnRate;
    return `
table inet ${this.table} {
  set internet {
    type ipv4_addr
    ${els(all.filter((x) => x.w.internet).map((x) => x.a))}
  }
  set allowers {
    type ipv4_addr
    ${els(all.filter((x) => x.w.allowers).map((x) => x.a))}
  }
${this.policySets()}
  set sandbox_nets {
    type ipv4_addr . ipv4_addr
    flags interval
    ${els(all.flatMap((x) => x.w.nets))}
  }
  set sandbox_services {
    type ipv4_addr . ipv4_addr . inet_proto . inet_service
    flags interval
    ${els(all.flatMap((x) => x.w.services))}
  }
  set new_conns {
    type ipv4_addr
    flags dynamic,timeout
    timeout 10s
    size 65535
  }
  chain refuse {
    meta l4proto tcp reject with tcp reset
    reject with icmpx type admin-prohibited
  }
  chain admit {
    ${rate > 0 ? `ct state new update @new_conns { ip saddr limit rate over ${rate}/second burst ${rate} packets } drop` : ""}
    accept
  }
  chain public {
    ip saddr != @internet return
    ${this.publicTail("goto admit")}
  }
  chain egress {
    ip daddr @operator_allow goto public
    ip daddr @operator_deny return
    ip saddr . ip daddr @sandbox_nets goto admit
    meta l4proto { tcp, udp } ip saddr . ip daddr . meta l4proto . th dport @sandbox_services goto admit
    meta l4proto { tcp, udp } th dport ${DNS_PORT} ip daddr @resolvers goto public
    ip daddr @non_public return
    goto public
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname ${br} ct state established,related accept
    iifname ${br} jump refuse
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname ${br} oifname ${br} jump refuse
    iifname ${br} ct state invalid drop
    iifname ${br} ct direction original jump egress
    iifname ${br} jump refuse
    oifname ${br} ct direction reply ip daddr @internet accept
    oifname ${br} ct direction reply ip daddr @allowers accept
    oifname ${br} drop
    ip saddr ${this.o.subnet} drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${this.o.subnet} oifname != ${br} masquerade
  }
}
`;
  }

  /** The guard table of one sandbox's namespace (see the file comment). */
  guardRuleset(address: string): string {
    const m = this.sandboxes.get(address);
    const internet = m?.internet ?? false;
    const { any, byPort } = entryRanges(m?.allow ?? []);
    const services: string[] = [];
    for (const [port, ranges] of byPort) for (const r of ranges) for (const proto of ["tcp", "udp"]) services.push(`${r} . ${proto} . ${port}`);
    const never = mergeCidrs([this.o.subnet, ...this.facts.addresses.map((a) => `${a}/32`)]);
    return `
table inet ${GUARD_TABLE} {
  set never {
    type ipv4_addr
    flags interval
    ${els(never)}
  }
${this.policySets()}
  set nets {
    type ipv4_addr
    flags interval
    ${els(any)}
  }
  set services {
    type ipv4_addr . inet_proto . inet_service
    flags interval
    ${els(services)}
  }
  chain refuse {
    meta l4proto tcp reject with tcp reset
    drop
  }
  chain public {
    ${internet ? this.publicTail("accept") : "return"}
  }
  chain egress {
    ip daddr @never return
    ip daddr @operator_allow goto public
    ip daddr @operator_deny return
    ip daddr @nets accept
    meta l4proto { tcp, udp } ip daddr . meta l4proto . th dport @services accept
    meta l4proto { tcp, udp } th dport ${DNS_PORT} ip daddr @resolvers goto public
    ip daddr @non_public return
    goto public
  }
  chain output {
    type filter hook output priority filter; policy accept;
    oifname "lo" accept
    ct state invalid drop
    ct direction reply accept
    ct direction original jump egress
    jump refuse
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "lo" accept
    ct state established,related accept
    ip saddr ${this.o.gateway} accept
    drop
  }
}
`;
  }

  // ---- the host table ------------------------------------------------------

  private async readFacts(): Promise<HostFacts> {
    return (this.o.readFacts ?? (() => readHostFacts()))();
  }

  /**
   * Re-reads the host's addresses, networks and resolvers; when they changed
   * (or on the first call) the host table and every guard are rewritten.
   * Returns whether they changed.
   */
  async refreshFacts(): Promise<boolean> {
    const facts = await this.readFacts();
    if (this.factsRead && JSON.stringify(facts) === JSON.stringify(this.facts)) return false;
    const first = !this.factsRead;
    this.facts = facts;
    this.factsRead = true;
    if (!first) {
      await this.install();
      // A few at a time: one nft process per sandbox.
      const addresses = [...this.sandboxes.keys()];
      const worker = async () => {
        // One that fails (a sandbox going away) is left to checkGuards().
        for (let a = addresses.shift(); a !== undefined; a = addresses.shift()) await this.writeGuard(a).catch(() => {});
      };
      await Promise.all(Array.from({ length: 4 }, worker));
    }
    return true;
  }

  get hostFacts(): HostFacts {
    return { ...this.facts };
  }

  /** (Re)creates the table atomically (one nft transaction) from the state held here. */
  install(): Promise<void> {
    return this.host(() => this.installNow());
  }

  /** install(), for callers already in the host queue. */
  private async installNow(): Promise<void> {
    if (!this.factsRead) {
      this.facts = await this.readFacts();
      this.factsRead = true;
    }
    await run("nft", ["-f", "-"], {
      input: `table inet ${this.table} {}\ndelete table inet ${this.table}\n${this.hostRuleset()}`,
    });
    for (const [a, m] of this.sandboxes) m.applied = this.wanted(a, m);
    this.reference = await this.snapshot().then((s) => s?.fixed);
  }

  async exists(): Promise<boolean> {
    return run("nft", ["list", "table", "inet", this.table]).then(() => true, () => false);
  }

  async remove(): Promise<void> {
    await this.host(() => run("nft", ["-f", "-"], { input: `table inet ${this.table} {}\ndelete table inet ${this.table}\n` }));
    this.reference = undefined;
  }

  /** The table listed: its rules and static sets as one string, and the member sets' elements. */
  private async snapshot(): Promise<{ fixed: string; sets: Record<string, string[]> } | undefined> {
    let out: string;
    try {
      out = await run("nft", ["-j", "list", "table", "inet", this.table]);
    } catch {
      return undefined;
    }
    return normalise(out, MEMBER_SETS, DYNAMIC_SETS);
  }

  /**
   * Whether the host table is there and complete: every chain, rule and set
   * as installed, and the member sets holding exactly the sandboxes they
   * should. Returns what is wrong, or undefined.
   */
  verify(): Promise<string | undefined> {
    return this.host(async () => {
      const snap = await this.snapshot();
      if (!snap) return `nftables table inet ${this.table} is missing`;
      if (snap.fixed !== this.reference) return `nftables table inet ${this.table} differs from what sandboxd installed (chains, rules or sets changed)`;
      for (const set of MEMBER_SETS) {
        const want = [...this.sandboxes.entries()].filter(([, m]) => m.applied[set]).map(([a]) => a).sort();
        const got = snap.sets[set] ?? [];
        if (JSON.stringify(want) !== JSON.stringify(got)) return `nftables set ${set} of inet ${this.table} holds ${got.length} sandboxes, ${want.length} expected`;
      }
      return undefined;
    });
  }

  // ---- sandboxes -----------------------------------------------------------

  /** Records a sandbox's egress settings (no host command: install() or attach() writes them). */
  register(address: string, egress: SandboxEgress): void {
    const m = this.sandboxes.get(address);
    if (m) Object.assign(m, { internet: egress.internet, allow: [...egress.allow] });
    else this.sandboxes.set(address, { internet: egress.internet, allow: [...egress.allow], applied: { ...NO_ELEMENTS } });
  }

  /**
   * The sandbox's namespace exists: write its guard and its host elements.
   * `fresh`: the namespace was just made, with no guard to replace (cheaper:
   * replacing a table with hooks waits for the kernel to let go of them).
   */
  async attach(address: string, netns: string, fresh = false): Promise<void> {
    const m = this.sandboxes.get(address);
    if (!m) throw new Error(`firewall: ${address} is not registered`);
    m.netns = netns;
    await Promise.all([this.writeGuard(address, fresh), this.syncHost(address)]);
  }

  async setInternet(address: string, enabled: boolean): Promise<void> {
    const m = this.sandboxes.get(address);
    if (!m) throw new Error(`firewall: ${address} is not registered`);
    m.internet = enabled;
    await Promise.all([this.writeGuard(address), this.syncHost(address)]);
  }

  async setAllow(address: string, allow: EgressEntry[]): Promise<void> {
    const m = this.sandboxes.get(address);
    if (!m) throw new Error(`firewall: ${address} is not registered`);
    m.allow = [...allow];
    await Promise.all([this.writeGuard(address), this.syncHost(address)]);
  }

  /** Removes a sandbox's host elements (its guard goes with its namespace). A missing table is no error. */
  async forget(address: string): Promise<void> {
    const m = this.sandboxes.get(address);
    this.sandboxes.delete(address);
    this.guardQueues.delete(address);
    if (!m) return;
    const structural = m.applied.nets.length + m.applied.services.length > 0;
    await this.host(async () => {
      const script = this.elementScript(address, m.applied, NO_ELEMENTS);
      if (script) await run("nft", ["-f", "-"], { input: script }).catch(async (e) => { if (await this.exists()) throw e; });
      if (structural) this.reference = await this.snapshot().then((s) => s?.fixed ?? this.reference);
    });
  }

  /** The sandboxes' egress settings as held (for tests and diagnostics). */
  egressOf(address: string): SandboxEgress | undefined {
    const m = this.sandboxes.get(address);
    return m && { internet: m.internet, allow: [...m.allow] };
  }

  /** Adds what is wanted and not there, removes what is there and no longer wanted ("add" then "delete": absent elements are no error). */
  private elementScript(address: string, from: Elements, to: Elements): string {
    const t = this.table;
    const lines: string[] = [];
    const del = (set: string, el: string) => lines.push(`add element inet ${t} ${set} { ${el} }`, `delete element inet ${t} ${set} { ${el} }`);
    const add = (set: string, el: string) => lines.push(`add element inet ${t} ${set} { ${el} }`);
    for (const set of MEMBER_SETS) {
      if (from[set] && !to[set]) del(set, address);
      if (to[set]) add(set, address);
    }
    for (const set of ["nets", "services"] as const) {
      const name = set === "nets" ? "sandbox_nets" : "sandbox_services";
      for (const el of from[set]) if (!to[set].includes(el)) del(name, el);
      for (const el of to[set]) if (!from[set].includes(el)) add(name, el);
    }
    return lines.length ? lines.join("\n") + "\n" : "";
  }

  private syncHost(address: string): Promise<void> {
    return this.host(async () => {
      const m = this.sandboxes.get(address);
      if (!m) return;
      const want = this.wanted(address, m);
      const script = this.elementScript(address, m.applied, want);
      if (!script) return;
      // The allowlist sets are part of what verify() compares whole: list them again after a change.
      const structural = JSON.stringify([m.applied.nets, m.applied.services]) !== JSON.stringify([want.nets, want.services]);
      try {
        await run("nft", ["-f", "-"], { input: script });
      } catch (e) {
        // Without the table there is nothing to update: the check restores it from this state.
        if (!(await this.exists())) return;
        // The table holds other elements than we believe (nft refuses to add an interval element
        // already there: "File exists"): rewrite it whole from the state held here, atomically.
        this.o.log?.warn({ err: String(e) }, "firewall: an element update failed; table rewritten from the held state");
        await this.installNow();
        return;
      }
      m.applied = want;
      if (structural) this.reference = await this.snapshot().then((s) => s?.fixed ?? this.reference);
    });
  }

  private inGuardQueue<T>(address: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.guardQueues.get(address) ?? Promise.resolve();
    const p = prev.catch(() => {}).then(fn);
    this.guardQueues.set(address, p.then(() => {}, () => {}));
    return p;
  }

  private writeGuard(address: string, fresh = false): Promise<void> {
    return this.inGuardQueue(address, () => this.writeGuardNow(address, fresh));
  }

  private async writeGuardNow(address: string, fresh = false): Promise<void> {
    const m = this.sandboxes.get(address);
    if (!m?.netns) return;
    const text = this.guardRuleset(address);
    await run("nsenter", [`--net=${m.netns}`, "--", "nft", "-f", "-"], {
      input: fresh ? text : `table inet ${GUARD_TABLE} {}\ndelete table inet ${GUARD_TABLE}\n${text}`,
    });
    // Sandboxes with the same settings share one guard text: listed back once per text.
    if (!this.guardRefs.has(text)) {
      if (this.guardRefs.size > 1000) this.guardRefs.clear();
      const listed = await this.listGuard(m.netns);
      if (listed !== undefined) this.guardRefs.set(text, listed);
    }
  }

  private async listGuard(netns: string): Promise<string | undefined> {
    try {
      return normalise(await run("nsenter", [`--net=${netns}`, "--", "nft", "-j", "list", "table", "inet", GUARD_TABLE]), [], []).fixed;
    } catch {
      return undefined;
    }
  }

  /**
   * Checks the guards of up to `limit` sandboxes (in turn, so every guard
   * is looked at within a few rounds) and rewrites any that is missing or
   * differs from what was written. Returns the addresses it rewrote.
   */
  async checkGuards(limit: number): Promise<string[]> {
    const attached = [...this.sandboxes.entries()].filter(([, m]) => m.netns).map(([a]) => a);
    if (attached.length === 0) return [];
    const picked: string[] = [];
    for (let i = 0; i < Math.min(limit, attached.length); i++) picked.push(attached[(this.guardCursor + i) % attached.length]!);
    this.guardCursor = (this.guardCursor + picked.length) % Math.max(attached.length, 1);
    const rewritten: string[] = [];
    await Promise.all(
      picked.map((address) =>
        this.inGuardQueue(address, async () => {
          const m = this.sandboxes.get(address);
          if (!m?.netns) return;
          const ref = this.guardRefs.get(this.guardRuleset(address));
          const got = await this.listGuard(m.netns);
          if (got !== undefined && got === ref) return;
          // Being destroyed: its namespace is going away with the guard.
          if (!(await fs.access(m.netns).then(() => true, () => false)) || !this.sandboxes.has(address)) return;
          await this.writeGuardNow(address);
          // A text never listed before (settings just changed) is no tampering.
          if (got === undefined || ref !== undefined) rewritten.push(address);
        }),
      ),
    );
    return rewritten;
  }

  /** Sandboxes in the table's member sets (internet on or an allowlist), for tests and leftovers. */
  async members(): Promise<string[]> {
    const snap = await this.snapshot();
    return [...new Set([...(snap?.sets.internet ?? []), ...(snap?.sets.allowers ?? [])])].sort();
  }

  /** Allowlist entries as given back to callers. */
  static format(entries: readonly EgressEntry[]): string[] {
    return entries.map(formatEgressEntry);
  }
}

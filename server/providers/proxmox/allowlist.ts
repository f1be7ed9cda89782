/**
 * A Proxmox sandbox's egress allowlist (docs/proxmox.md §4): `OUT ACCEPT`
 * rules at the top of its container firewall, above `GROUP sandboxd-egress`.
 * pve-firewall runs a container's OUT rules in order and an ACCEPT is final,
 * so what such a rule names gets out before the group's REJECT to the private
 * ranges and whatever `policy_out` (the internet toggle) says.
 *
 * sandboxd only ever touches rules carrying its comment, ALLOW_COMMENT: an
 * entry "10.1.2.3:5432" is two rules (`-p tcp -dport 5432` and `-p udp
 * -dport 5432`), "10.0.0.0/8" one rule with no protocol. The rules are the
 * stored list: a restarted sandboxd, or another replica, reads it back.
 */
import { invalidArgument, notFound, unavailable } from "../../errors.js";
import { EgressSyntaxError, checkEgressAllow, formatEgressEntry, parseCidr, type EgressEntry } from "../egress.js";
import type { Logger } from "../local/options.js";
import type { PveClient } from "./client.js";
import { toSandboxError } from "./errors.js";
import type { ContainerRule } from "./firewall.js";
import { ctPath } from "./lifecycle.js";
import { backoffMs, classify, sleep } from "./retry.js";

/** The comment marking sandboxd's allowlist rules. */
export const ALLOW_COMMENT = "sandboxd-allow";

/** The fields of one allowlist rule as POST …/firewall/rules takes them. */
export interface AllowRule {
  type: "out";
  action: "ACCEPT";
  dest: string;
  proto?: "tcp" | "udp";
  dport?: string;
}

/** An entry's rules: tcp and udp for a port, else one rule for every protocol. */
export function allowRules(e: EgressEntry): AllowRule[] {
  const dest = formatEgressEntry({ cidr: e.cidr });
  if (e.port === undefined) return [{ type: "out", action: "ACCEPT", dest }];
  return (["tcp", "udp"] as const).map((proto) => ({ type: "out", action: "ACCEPT", dest, proto, dport: String(e.port) }));
}

const isOurs = (r: ContainerRule) => r.comment === ALLOW_COMMENT;
const byPos = (rules: readonly ContainerRule[]) => [...rules].sort((a, b) => a.pos - b.pos);

/** The entries sandboxd's enabled rules open, in rule order ("10.1.2.3:5432", "10.0.0.0/8"). */
export function allowFromRules(rules: readonly ContainerRule[]): string[] {
  const out: string[] = [];
  for (const r of byPos(rules)) {
    if (!isOurs(r) || r.type !== "out" || r.action !== "ACCEPT" || Number(r.enable ?? 1) === 0 || !r.dest) continue;
    let cidr: string;
    try {
      cidr = parseCidr(r.dest);
    } catch {
      continue;
    }
    const port = /^\d+$/.test(r.dport ?? "") && ["tcp", "udp"].includes(r.proto ?? "") ? Number(r.dport) : undefined;
    if (r.proto && port === undefined) continue;
    const entry = formatEgressEntry({ cidr, ...(port === undefined ? {} : { port }) });
    if (!out.includes(entry)) out.push(entry);
  }
  return out;
}

/** Whether the firewall's first rules are exactly `wanted`, enabled and marked, and no other rule is marked. */
export function holds(rules: readonly ContainerRule[], wanted: readonly AllowRule[]): boolean {
  const sorted = byPos(rules);
  if (sorted.filter(isOurs).length !== wanted.length) return false;
  return wanted.every((w, i) => {
    const r = sorted[i];
    return r !== undefined && isOurs(r) && r.type === w.type && r.action === w.action && Number(r.enable ?? 1) === 1 &&
      r.dest === w.dest && (r.proto ?? undefined) === w.proto && (r.dport ?? undefined) === w.dport;
  });
}

/** Failures after which writing again from a fresh read can succeed: a concurrent change, lock contention, no answer. */
function retriable(e: unknown): boolean {
  return ["conflict", "locked", "transient"].includes(classify(e)) || /no rule at position/.test(String((e as Error)?.message));
}

const ATTEMPTS = 6;

/**
 * Makes the CT's marked rules exactly `entries`, on top: deletes the old ones
 * (highest position first, each DELETE carrying the digest of the list it was
 * picked from, so a rule moved meanwhile is never the one removed), then
 * inserts the new ones (a POST always puts its rule first, so they go in
 * last entry first). Then reads back; a concurrent writer (another replica,
 * an operator) interleaving makes it start over from a fresh read, after a
 * random pause so that two writers stop meeting. Returns the entries the
 * rules hold.
 */
export async function writeAllowlist(client: PveClient, rulesPath: string, entries: readonly EgressEntry[], log: Logger): Promise<string[]> {
  const wanted = entries.flatMap(allowRules);
  const list = () => client.get<ContainerRule[]>(rulesPath);
  for (let attempt = 1; ; attempt++) {
    let rules = await list();
    if (holds(rules, wanted)) return allowFromRules(rules);
    try {
      for (let ours = byPos(rules).filter(isOurs); ours.length; ours = byPos(rules).filter(isOurs)) {
        const last = ours[ours.length - 1]!;
        await client.delete(`${rulesPath}/${last.pos}`, { digest: last.digest });
        rules = await list();
      }
      for (const r of [...wanted].reverse()) {
        // enable=1: a rule created without it is there but off.
        await client.post(rulesPath, { ...r, enable: 1, comment: ALLOW_COMMENT, pos: 0 });
      }
      rules = await list();
      if (holds(rules, wanted)) return allowFromRules(rules);
      if (attempt >= ATTEMPTS) throw unavailable(`the container's firewall rules kept changing while sandboxd wrote its allowlist (${rulesPath})`);
    } catch (e) {
      if (attempt >= ATTEMPTS || !retriable(e)) throw e;
    }
    log.warn({ path: rulesPath, attempt }, "the container's firewall rules changed while the allowlist was written; writing it again");
    await sleep(backoffMs(attempt, 100, 2000));
  }
}

/** setEgressAllow of the provider: entries checked as on the local runtime, one write at a time per sandbox. */
export class Allowlists {
  /** id → the write under way. */
  private readonly writing = new Map<string, Promise<unknown>>();

  /** `deny`: SANDBOXD_EGRESS_DENY, which no entry may open (an ACCEPT above the group would). */
  constructor(private readonly client: PveClient, private readonly log: Logger, private readonly deny: readonly string[]) {}

  async set(id: string, entries: readonly string[], locate: () => Promise<{ node: string; vmid: number } | undefined>): Promise<string[]> {
    let parsed: EgressEntry[];
    try {
      parsed = checkEgressAllow(entries, this.deny);
    } catch (e) {
      if (e instanceof EgressSyntaxError) throw invalidArgument("egress_allow", e.message);
      throw e;
    }
    const write = (this.writing.get(id) ?? Promise.resolve()).catch(() => {}).then(async () => {
      const found = await locate();
      if (!found) throw notFound(`sandbox ${id} not found`);
      return writeAllowlist(this.client, `${ctPath(found.node, found.vmid)}/firewall/rules`, parsed, this.log);
    });
    this.writing.set(id, write);
    try {
      const stored = await write;
      this.log.info({ id, egressAllow: stored }, "egress allowlist changed");
      return stored;
    } catch (e) {
      throw toSandboxError(e, `set the egress allowlist of ${id}`);
    } finally {
      if (this.writing.get(id) === write) this.writing.delete(id);
    }
  }
}

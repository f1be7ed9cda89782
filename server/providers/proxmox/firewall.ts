/**
 * The container firewall's egress policy, which is how a Proxmox sandbox's
 * internet access is granted or cut (docs/proxmox.md §4).
 *
 * Cut means REJECT, not DROP: pve-firewall's REJECT answers TCP with a reset
 * and other protocols with an ICMP error, so `pip install` or `git clone`
 * inside fail at once instead of waiting for a connect timeout per address.
 *
 * "Internet on" means the public internet only, as on the local runtime: a
 * security group every sandbox carries (baked into the template, whose
 * firewall rules clones copy) rejects the non-public ranges, listed in a
 * datacenter IPSet, before the container's `policy_out` applies.
 * clusterFirewallConfig() writes that group and its IPSets for
 * /etc/pve/firewall/cluster.fw from the server's egress settings;
 * egressGroupProblem() tells whether a container's rules carry it (checked on
 * every template at start). A sandbox's own allowlist is `OUT ACCEPT` rules
 * above the group (allowlist.ts).
 * (The new-connection rate limit has no pve-firewall rule: it is a host
 * nftables table on each node, docs/proxmox.md §4.)
 */
import { DNS_PORT, NON_PUBLIC, type EgressPolicy } from "../egress.js";

/** A container's policy_out. */
export type PolicyOut = "ACCEPT" | "REJECT";

export function egressPolicy(internet: boolean): PolicyOut {
  return internet ? "ACCEPT" : "REJECT";
}

/** Datacenter IPSet of the ranges that are not the internet (with the exceptions as `!` entries). */
export const PRIVATE_IPSET = "sandboxd-private";
/** Datacenter IPSet of the resolvers sandboxes use: DNS to them is allowed with internet on, nothing else. */
export const DNS_IPSET = "sandboxd-dns";
/** Security group every sandbox's firewall starts with. */
export const EGRESS_GROUP = "sandboxd-egress";

const cidr = (a: string) => (a.includes("/") ? a : `${a}/32`);
const unique = (list: readonly string[]) => [...new Set(list)].sort();

/**
 * The [IPSET …] and [group …] sections of cluster.fw for the given egress
 * settings; `hostNetworks` are the node's own networks (management LAN,
 * storage, cluster networks) and `resolvers` the nameservers the template
 * uses. The group holds only REJECT rules: a group's ACCEPT would be final
 * and let traffic out whatever the container's policy_out (the internet
 * toggle) says, so what passes the group is left to policy_out:
 *   OUT REJECT to +sandboxd-dns, TCP/UDP other than port 53
 *   OUT REJECT to +sandboxd-private: NON_PUBLIC, SANDBOXD_EGRESS_DENY and the
 *     node's networks, except (`!` entries, ipset "nomatch") SANDBOXD_EGRESS_ALLOW
 *     and the resolvers; in an ipset the most specific entry wins, so an
 *     allow CIDR wider than a deny entry does not open that entry
 *   with SANDBOXD_EGRESS_PORTS: OUT REJECT TCP and UDP to every other port
 *     (53 stays open), and ICMP
 */
export function clusterFirewallConfig(policy: EgressPolicy, hostNetworks: readonly string[], resolvers: readonly string[]): string {
  const denied = unique([...NON_PUBLIC, ...policy.deny, ...hostNetworks].map(cidr));
  const excepted = unique([...policy.allow, ...resolvers].map(cidr)).filter((c) => !denied.includes(c));
  const otherThanDns = `1:${DNS_PORT - 1},${DNS_PORT + 1}:65535`;
  const lines = [
    `[IPSET ${PRIVATE_IPSET}] # not the internet (! = SANDBOXD_EGRESS_ALLOW and the resolvers)`,
    "",
    ...denied,
    ...excepted.map((c) => `!${c}`),
    "",
    `[IPSET ${DNS_IPSET}] # the resolvers sandboxes use`,
    "",
    ...unique(resolvers.map(cidr)),
    "",
    `[group ${EGRESS_GROUP}] # sandboxd: internet on means the public internet; policy_out decides the rest`,
    "",
    `OUT REJECT -dest +${DNS_IPSET} -p tcp -dport ${otherThanDns}`,
    `OUT REJECT -dest +${DNS_IPSET} -p udp -dport ${otherThanDns}`,
    `OUT REJECT -dest +${PRIVATE_IPSET}`,
  ];
  if (policy.ports) {
    // iptables' multiport takes at most 15 ports (a range counts twice): 7 ranges a rule.
    const closed = portComplement(policy.ports).split(",").filter(Boolean);
    for (let i = 0; i < closed.length; i += 7) {
      const chunk = closed.slice(i, i + 7).join(",");
      lines.push(`OUT REJECT -p tcp -dport ${chunk}`, `OUT REJECT -p udp -dport ${chunk}`);
    }
    lines.push("OUT REJECT -p icmp");
  }
  return lines.join("\n") + "\n";
}

/** The ports not in `open` (nor DNS), in pve-firewall's syntax "1:52,54:79,81:442,444:65535"; "" when none. */
export function portComplement(open: ReadonlyArray<[number, number]>): string {
  const all = [...open, [DNS_PORT, DNS_PORT] as [number, number]].sort((a, b) => a[0] - b[0]);
  const out: string[] = [];
  let next = 1;
  for (const [a, b] of all) {
    if (a > next) out.push(a - 1 === next ? `${next}` : `${next}:${a - 1}`);
    next = Math.max(next, b + 1);
  }
  if (next <= 65535) out.push(next === 65535 ? "65535" : `${next}:65535`);
  return out.join(",");
}

/** A rule as GET /nodes/{node}/lxc/{vmid}/firewall/rules lists it. */
export interface ContainerRule {
  pos: number;
  type: string;
  action: string;
  enable?: number;
  dest?: string;
  proto?: string;
  dport?: string;
  comment?: string;
  /** The whole list's digest (every rule carries it); DELETE …/rules/{pos} refuses a stale one. */
  digest?: string;
}

/**
 * Why a container's (or the template's) firewall rules do not keep it to
 * the public internet, or undefined: the first rule must be the enabled
 * egress group, so nothing accepts a private destination before it.
 */
export function egressGroupProblem(rules: readonly ContainerRule[]): string | undefined {
  const first = [...rules].sort((a, b) => a.pos - b.pos)[0];
  const open = "so sandboxes with internet on would reach private networks and the node's own";
  if (!first) return `its firewall has no rules, ${open}: add "GROUP ${EGRESS_GROUP}" as the first rule (docs/proxmox.md §4)`;
  if (first.type !== "group" || first.action !== EGRESS_GROUP) return `its first firewall rule is not "GROUP ${EGRESS_GROUP}", ${open} (docs/proxmox.md §4)`;
  if (Number(first.enable ?? 1) === 0) return `its "GROUP ${EGRESS_GROUP}" firewall rule is disabled, ${open}`;
  return undefined;
}

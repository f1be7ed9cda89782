/**
 * The one nftables table an instance owns (family inet). Its rules only match
 * packets entering or leaving through the instance's bridge, so unrelated host
 * traffic is left alone.
 *
 * - input: from the bridge to the host only replies (ct established,related):
 *   sandboxes reach no host service (sshd included), yet host → sandbox SSH works.
 * - forward: sandbox → sandbox refused (routed or bridged: br_netfilter sends
 *   bridged frames through this hook too); sandbox → beyond only if its
 *   address is in @internet; back to a sandbox only replies, and only to
 *   members. Every packet is checked, not just new flows, so removing a
 *   member cuts its open connections too.
 * - postrouting: masquerade what leaves the subnet through another interface.
 *
 * What a sandbox may not send is refused, not dropped: TCP gets a reset
 * (connect fails at once with "connection refused"), anything else an ICMP
 * "administratively prohibited" (EHOSTUNREACH), so `pip install` or `git
 * clone` fail fast instead of waiting for a connect timeout per address.
 * Resets are not rate-limited. The kernel rate-limits ICMP errors per
 * destination, i.e. per sandbox (net.ipv4.icmp_ratelimit: a burst of about
 * 6, then 1 per second), so past a burst UDP to blocked addresses goes
 * unanswered and waits for its own timeout; one sandbox's burst does not use
 * up another's (test/security/shared-icmp-budget.spec.ts). Traffic from
 * outside towards a sandbox is dropped silently: nothing is sent out on its behalf.
 */
import { run } from "./host.js";

export class Firewall {
  constructor(
    private readonly table: string,
    private readonly bridge: string,
    private readonly subnet: string,
  ) {}

  private ruleset(internet: string[]): string {
    const br = JSON.stringify(this.bridge);
    const elements = internet.length ? `elements = { ${internet.join(", ")} }` : "";
    return `
table inet ${this.table} {
  set internet {
    type ipv4_addr
    ${elements}
  }
  chain refuse {
    meta l4proto tcp reject with tcp reset
    reject with icmpx type admin-prohibited
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname ${br} ct state established,related accept
    iifname ${br} jump refuse
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname ${br} oifname ${br} jump refuse
    iifname ${br} ip saddr @internet accept
    iifname ${br} jump refuse
    oifname ${br} ip daddr @internet ct state established,related accept
    oifname ${br} drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${this.subnet} oifname != ${br} masquerade
  }
}
`;
  }

  /** (Re)creates the table atomically (one nft transaction) with the given internet-enabled addresses. */
  async install(internet: string[]): Promise<void> {
    await run("nft", ["-f", "-"], {
      input: `table inet ${this.table} {}\ndelete table inet ${this.table}\n${this.ruleset(internet)}`,
    });
  }

  /**
   * Adds or removes an address in @internet. Removal adds first in the same
   * transaction so deleting an absent element is not an error.
   */
  async setInternet(address: string, enabled: boolean): Promise<void> {
    const el = `element inet ${this.table} internet { ${address} }`;
    await run("nft", ["-f", "-"], { input: enabled ? `add ${el}\n` : `add ${el}\ndelete ${el}\n` });
  }

  async exists(): Promise<boolean> {
    return run("nft", ["list", "table", "inet", this.table]).then(() => true, () => false);
  }

  async remove(): Promise<void> {
    await run("nft", ["-f", "-"], { input: `table inet ${this.table} {}\ndelete table inet ${this.table}\n` });
  }

  /** Current members of @internet (for tests and diagnostics). */
  async members(): Promise<string[]> {
    try {
      const out = await run("nft", ["-j", "list", "set", "inet", this.table, "internet"]);
      const parsed = JSON.parse(out) as { nftables: Array<{ set?: { elem?: unknown[] } }> };
      const set = parsed.nftables.find((o) => o.set)?.set;
      return (set?.elem ?? []).filter((e): e is string => typeof e === "string");
    } catch {
      return [];
    }
  }
}

/**
 * The container firewall's egress policy, which is how a Proxmox sandbox's
 * internet access is granted or cut (docs/proxmox.md §4).
 *
 * Cut means REJECT, not DROP: pve-firewall's REJECT answers TCP with a reset
 * and other protocols with an ICMP error, so `pip install` or `git clone`
 * inside fail at once instead of waiting for a connect timeout per address.
 */
export type EgressPolicy = "ACCEPT" | "REJECT";

export function egressPolicy(internet: boolean): EgressPolicy {
  return internet ? "ACCEPT" : "REJECT";
}

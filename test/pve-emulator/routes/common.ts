/** Helpers shared by the CT routes. */
import { die } from "../http.js";
import type { Emu } from "../context.js";
import { digest, type Ct } from "../cluster.js";
import type { Values } from "../schema.js";

/** The config flock: fails with PVE's timeout message when the fault fires. */
export function lockConfig(emu: Emu, vmid: number): void {
  if (emu.faults.lockTimesOut()) throw die(`can't lock file '/run/lock/lxc/pve-config-${vmid}.lock' - got timeout`);
}

/** Whether the CT's firewall lets it out: the CT firewall on with policy_out DROP/REJECT cuts egress. */
export function internetAllowed(ct: Ct): boolean {
  const policy = String(ct.firewall.policy_out ?? "ACCEPT");
  return !(Number(ct.firewall.enable ?? 0) === 1 && policy !== "ACCEPT");
}

export const vmCheck = (priv: string) => (emu: Emu, path: Record<string, string>) => emu.acl.requireVm(Number(path.vmid), priv);

/** The CT of a config-changing call: found, its config flock taken, not locked, and the caller's digest (if any) current. */
export function ctForUpdate(emu: Emu, p: Values): Ct {
  const vmid = Number(p.vmid);
  const ct = emu.cluster.ct(String(p.node), vmid);
  lockConfig(emu, vmid);
  emu.cluster.checkLock(ct);
  if (p.digest !== undefined && p.digest !== digest(ct.conf)) throw die("detected modified configuration - file changed by other user? Try again.");
  return ct;
}

/**
 * CT firewall options: policy_out DROP/REJECT (with enable=1) cuts the
 * sandbox's egress. CT firewall rules (API2/Firewall/Rules.pm, CTRules):
 * listed with pos and digest; a POST always puts the new rule first (create_rule
 * `unshift`s it: its `pos` parameter is accepted and ignored, moving a rule is
 * PUT …/rules/{pos} moveto); a DELETE removes the rule at pos, the others
 * moving up, refused when the digest given is stale.
 */
import { digest, type Ct } from "../cluster.js";
import type { Emu, Route } from "../context.js";
import { internetAllowed, vmCheck } from "./common.js";
import { die } from "../http.js";
import { allowEntries, assertUnmodified, listRules, ruleFromParams } from "../fw-rules.js";

/** lock_vmfw_conf: the cluster-wide firewall lock of the CT. */
function lockFirewall(emu: Emu, vmid: number): void {
  if (emu.faults.lockTimesOut()) throw die(`cfs-lock 'firewall-vm-${vmid}' error: got lock request timeout`);
}

/** The rules' effect on a running CT's sandbox (pve-firewall would apply them within about ten seconds; here at once). */
async function applyRules(emu: Emu, ct: Ct): Promise<void> {
  if (ct.sandboxId) await emu.sandboxes.setEgressAllow(ct.sandboxId, allowEntries(ct.rules));
}

export const firewallRoutes: Route[] = [
  {
    method: "GET", path: "/nodes/{node}/lxc/{vmid}/firewall/options", check: vmCheck("VM.Audit"),
    handler: ({ emu, p }) => {
      const ct = emu.cluster.ct(String(p.node), Number(p.vmid));
      return { ...ct.firewall, digest: digest(ct.firewall) };
    },
  },
  {
    method: "PUT", path: "/nodes/{node}/lxc/{vmid}/firewall/options", check: vmCheck("VM.Config.Network"),
    handler: async ({ emu, p }) => {
      const vmid = Number(p.vmid);
      const ct = emu.cluster.ct(String(p.node), vmid);
      lockFirewall(emu, vmid);
      if (p.digest !== undefined && p.digest !== digest(ct.firewall)) throw die("detected modified configuration - file changed by other user? Try again.");
      const before = internetAllowed(ct);
      for (const k of String(p.delete ?? "").split(/[,;\s]+/).filter(Boolean)) delete ct.firewall[k];
      for (const [k, v] of Object.entries(p)) if (!["node", "vmid", "delete", "digest"].includes(k) && v !== undefined) ct.firewall[k] = v;
      const after = internetAllowed(ct);
      if (before !== after && ct.sandboxId) await emu.sandboxes.setInternet(ct.sandboxId, after);
      return null;
    },
  },
  {
    method: "GET", path: "/nodes/{node}/lxc/{vmid}/firewall/rules", check: vmCheck("VM.Audit"),
    handler: ({ emu, p }) => listRules(emu.cluster.ct(String(p.node), Number(p.vmid)).rules),
  },
  {
    method: "POST", path: "/nodes/{node}/lxc/{vmid}/firewall/rules", check: vmCheck("VM.Config.Network"),
    handler: async ({ emu, p }) => {
      const ct = emu.cluster.ct(String(p.node), Number(p.vmid));
      lockFirewall(emu, ct.vmid);
      ct.rules.unshift(ruleFromParams(p));
      await applyRules(emu, ct);
      return null;
    },
  },
  {
    method: "DELETE", path: "/nodes/{node}/lxc/{vmid}/firewall/rules/{pos}", check: vmCheck("VM.Config.Network"),
    handler: async ({ emu, p }) => {
      const ct = emu.cluster.ct(String(p.node), Number(p.vmid));
      lockFirewall(emu, ct.vmid);
      assertUnmodified(ct.rules, p.digest);
      const pos = Number(p.pos);
      if (pos >= ct.rules.length) throw die(`no rule at position ${pos}`);
      ct.rules.splice(pos, 1);
      await applyRules(emu, ct);
      return null;
    },
  },
];

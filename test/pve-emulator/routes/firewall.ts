/** CT firewall options: policy_out DROP/REJECT (with enable=1) cuts the sandbox's egress. */
import { digest } from "../cluster.js";
import type { Route } from "../context.js";
import { internetAllowed, vmCheck } from "./common.js";
import { die } from "../http.js";

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
      if (emu.faults.lockTimesOut()) throw die(`cfs-lock 'firewall-vm-${vmid}' error: got lock request timeout`);
      if (p.digest !== undefined && p.digest !== digest(ct.firewall)) throw die("detected modified configuration - file changed by other user? Try again.");
      const before = internetAllowed(ct);
      for (const k of String(p.delete ?? "").split(/[,;\s]+/).filter(Boolean)) delete ct.firewall[k];
      for (const [k, v] of Object.entries(p)) if (!["node", "vmid", "delete", "digest"].includes(k) && v !== undefined) ct.firewall[k] = v;
      const after = internetAllowed(ct);
      if (before !== after && ct.sandboxId) await emu.sandboxes.setInternet(ct.sandboxId, after);
      return null;
    },
  },
];

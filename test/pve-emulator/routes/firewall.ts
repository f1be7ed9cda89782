/** CT firewall options: policy_out DROP/REJECT (with enable=1) cuts the sandbox's egress. */
import { digest } from "../cluster.js";
import type { Route } from "../context.js";
import { NODE, VMID } from "../schema.js";
import { internetAllowed, vmCheck } from "./common.js";
import { die } from "../http.js";

const POLICY = { type: "string", optional: true, enum: ["ACCEPT", "REJECT", "DROP"] } as const;
const BOOL = { type: "boolean", optional: true } as const;
const LOG = { type: "string", optional: true, enum: ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "nolog"] } as const;

export const firewallRoutes: Route[] = [
  {
    method: "GET", path: "/nodes/{node}/lxc/{vmid}/firewall/options", check: vmCheck("VM.Audit"), schema: { node: NODE, vmid: VMID },
    handler: ({ emu, p }) => {
      const ct = emu.cluster.ct(String(p.node), Number(p.vmid));
      return { ...ct.firewall, digest: digest(ct.firewall) };
    },
  },
  {
    method: "PUT", path: "/nodes/{node}/lxc/{vmid}/firewall/options", check: vmCheck("VM.Config.Network"),
    schema: {
      node: NODE, vmid: VMID, enable: BOOL, policy_in: POLICY, policy_out: POLICY, dhcp: BOOL, ipfilter: BOOL, macfilter: BOOL,
      ndp: BOOL, radv: BOOL, log_level_in: LOG, log_level_out: LOG, delete: { type: "string", optional: true }, digest: { type: "string", optional: true },
    },
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

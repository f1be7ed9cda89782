/** start / stop / shutdown, status/current and interfaces. */
import { die } from "../http.js";
import type { Ct } from "../cluster.js";
import { netValue } from "../cluster.js";
import { diskGiB } from "../cluster.js";
import type { Emu, Route } from "../context.js";
import { sleep } from "../tasks.js";
import { ctStatus } from "./cluster.js";
import { internetAllowed, vmCheck } from "./common.js";
import { allowEntries } from "../fw-rules.js";

async function startCt(emu: Emu, ct: Ct, log: (l: string) => void): Promise<void> {
  if (ct.conf.lock !== undefined) throw new Error(`CT is locked (${ct.conf.lock})`);
  if (ct.conf.template) throw new Error("you can't start a CT if it's a template");
  if (ct.status === "running" || ct.busy) throw new Error(`CT ${ct.vmid} already running`);
  ct.busy = true;
  try {
    const t0 = Date.now();
    if (emu.faults.taskFails()) {
      await sleep(emu.timing.startMs);
      throw new Error(`startup for container '${ct.vmid}' failed`);
    }
    const h = await emu.sandboxes.create({
      vmid: ct.vmid, cores: Number(ct.conf.cores ?? 1), memoryMiB: Number(ct.conf.memory ?? 512),
      diskGiB: diskGiB(String(ct.conf.rootfs ?? "")), internet: internetAllowed(ct),
    }).catch((e: Error) => {
      log(e.message);
      throw new Error(`startup for container '${ct.vmid}' failed`);
    });
    // What the rules open is there before anything runs inside (pve-firewall has the CT's chains before its veth is up).
    const allow = allowEntries(ct.rules);
    if (allow.length) await emu.sandboxes.setEgressAllow(h.id, allow);
    await sleep(emu.timing.startMs - (Date.now() - t0));
    if (!emu.cluster.cts.has(ct.vmid)) {
      await emu.sandboxes.destroy(h.id);
      throw new Error(`Configuration file 'nodes/${ct.node}/lxc/${ct.vmid}.conf' does not exist`);
    }
    Object.assign(ct, { status: "running", sandboxId: h.id, address: h.address, startedAt: Date.now(), ipAt: Date.now() + emu.timing.ipDelayMs });
  } finally {
    ct.busy = false;
  }
}

async function stopCt(emu: Emu, ct: Ct): Promise<void> {
  if (emu.faults.taskFails()) throw new Error(`can't lock file '/run/lock/lxc/pve-config-${ct.vmid}.lock' - got timeout`);
  if (ct.sandboxId) await emu.sandboxes.destroy(ct.sandboxId);
  await sleep(emu.timing.stopMs);
  Object.assign(ct, { status: "stopped", sandboxId: undefined, address: undefined, startedAt: undefined, ipAt: undefined });
}

const power = (action: "start" | "stop" | "shutdown"): Route => ({
  method: "POST", path: `/nodes/{node}/lxc/{vmid}/status/${action}`, check: vmCheck("VM.PowerMgmt"),
  handler: ({ emu, p, user }) => {
    const ct = emu.cluster.ct(String(p.node), Number(p.vmid));
    if (action === "start" && ct.status === "running") throw die(`CT ${ct.vmid} already running`);
    if (action !== "start" && ct.status !== "running") throw die(`CT ${ct.vmid} not running`);
    const type = action === "start" ? "vzstart" : action === "stop" ? "vzstop" : "vzshutdown";
    return emu.tasks.start(String(p.node), type, String(ct.vmid), user, (log) => (action === "start" ? startCt(emu, ct, log) : stopCt(emu, ct)));
  },
});

const ipEntry = (address: string, type: "inet" | "inet6", prefix: number) => ({ "ip-address": address, "ip-address-type": type, prefix });

export const powerRoutes: Route[] = [
  power("start"),
  power("stop"),
  power("shutdown"),
  {
    method: "GET", path: "/nodes/{node}/lxc/{vmid}/status/current", check: vmCheck("VM.Audit"),
    handler: ({ emu, p }) => ({ ...ctStatus(emu, emu.cluster.ct(String(p.node), Number(p.vmid))), ha: { managed: 0 } }),
  },
  {
    method: "GET", path: "/nodes/{node}/lxc/{vmid}/interfaces", check: vmCheck("VM.Audit"),
    handler: ({ emu, p }) => {
      const ct = emu.cluster.ct(String(p.node), Number(p.vmid));
      if (ct.status !== "running") return null;
      const hw = netValue(String(ct.conf.net0 ?? ""), "hwaddr") ?? "BC:24:11:00:00:00";
      const b = hw.split(":").map((x) => parseInt(x, 16));
      const ll = `fe80::${((b[0]! ^ 2) << 8 | b[1]!).toString(16)}:${(b[2]! << 8 | 0xff).toString(16)}:fe${b[3]!.toString(16).padStart(2, "0")}:${(b[4]! << 8 | b[5]!).toString(16)}`;
      const prefix = Number(emu.sandboxes.runtime.subnet.cidr.split("/")[1]);
      const eth0Ips = [ipEntry(ll, "inet6", 64)];
      const hasIp = ct.address && Date.now() >= (ct.ipAt ?? 0);
      if (hasIp) eth0Ips.unshift(ipEntry(ct.address!, "inet", prefix));
      const eth0: Record<string, unknown> = { name: "eth0", hwaddr: hw.toLowerCase(), inet6: `${ll}/64`, "hardware-address": hw.toLowerCase(), "ip-addresses": eth0Ips };
      if (hasIp) eth0.inet = `${ct.address}/${prefix}`;
      const lo = {
        name: "lo", hwaddr: "00:00:00:00:00:00", inet: "127.0.0.1/8", inet6: "::1/128", "hardware-address": "00:00:00:00:00:00",
        "ip-addresses": [ipEntry("127.0.0.1", "inet", 8), ipEntry("::1", "inet6", 128)],
      };
      return [lo, eth0];
    },
  },
];

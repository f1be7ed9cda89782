/** CT list, clone, config GET/PUT and destroy. */
import { ApiError, die, paramError } from "../http.js";
import { descriptionOut, digest, diskGiB, normaliseNet, normaliseTags, randomMac, type Conf } from "../cluster.js";
import type { Route } from "../context.js";
import { NODE, VMID } from "../schema.js";
import { sleep } from "../tasks.js";
import { ctStatus } from "./cluster.js";
import { lockConfig, vmCheck } from "./common.js";

const BOOL = { type: "boolean", optional: true } as const;
const STR = { type: "string", optional: true } as const;
const CONFIG_PRIVS: Record<string, string> = {
  cores: "VM.Config.CPU", memory: "VM.Config.Memory", swap: "VM.Config.Memory", hostname: "VM.Config.Network",
  net0: "VM.Config.Network", description: "VM.Config.Options", tags: "VM.Config.Options",
};

export const lxcRoutes: Route[] = [
  {
    method: "GET", path: "/nodes/{node}/lxc", schema: { node: NODE },
    handler: ({ emu, p }) => {
      emu.cluster.node(String(p.node));
      return [...emu.cluster.cts.values()]
        .filter((ct) => ct.node === p.node && emu.acl.canVm(ct.vmid, "VM.Audit"))
        .map((ct) => ({ ...ctStatus(emu, ct), vmid: ct.vmid }));
    },
  },
  {
    method: "POST", path: "/nodes/{node}/lxc/{vmid}/clone", check: vmCheck("VM.Clone"),
    schema: {
      node: NODE, vmid: VMID, newid: VMID, hostname: { ...STR, pattern: /^[a-zA-Z0-9.-]+$/ }, description: { ...STR, maxLength: 8192 },
      pool: STR, full: BOOL, storage: STR, target: { ...NODE, optional: true }, snapname: STR, bwlimit: { type: "integer", optional: true, min: 0 },
    },
    handler: ({ emu, p, user }) => {
      const { cluster } = emu;
      const vmid = Number(p.vmid);
      const newid = Number(p.newid);
      const pool = p.pool === undefined ? undefined : String(p.pool);
      if (pool !== undefined && pool !== emu.pool) throw new ApiError(403, `Permission check failed (/pool/${pool}, VM.Allocate)`);
      if (!emu.acl.canVm(newid, "VM.Allocate") && !(pool && emu.acl.canPool(pool, "VM.Allocate"))) throw new ApiError(403, "Permission check failed");
      const node = String(p.node);
      cluster.node(node);
      const target = p.target === undefined ? node : String(p.target);
      cluster.node(target);
      const src = cluster.ct(node, vmid);
      const full = p.full === undefined ? !src.conf.template : p.full === 1;
      if (!full && p.storage !== undefined) throw paramError({ storage: "parameter 'storage' not allowed for linked clones" });
      if (!full && !src.conf.template) throw die("linked clone feature for 'local-lvm:vm-" + vmid + "-disk-0' is not available");
      lockConfig(emu, vmid);
      cluster.checkLock(src);
      const taken = cluster.cts.get(newid);
      if (taken) throw die(`CT ${newid} already exists on node '${taken.node}'`);
      src.conf.lock = "disk";
      const conf: Conf = { ...src.conf, lock: "create" };
      delete conf.template;
      if (p.hostname !== undefined) conf.hostname = String(p.hostname);
      if (p.description !== undefined) conf.description = String(p.description);
      if (conf.net0) conf.net0 = String(conf.net0).replace(/hwaddr=[0-9A-Fa-f:]+/, `hwaddr=${randomMac()}`);
      const storage = p.storage === undefined ? "local-lvm" : String(p.storage);
      conf.rootfs = `${storage}:vm-${newid}-disk-0,size=${diskGiB(String(src.conf.rootfs ?? ""))}G`;
      const ct = { vmid: newid, node: target, conf, firewall: { ...src.firewall }, status: "stopped" as const };
      cluster.cts.set(newid, ct);
      return emu.tasks.start(node, "vzclone", String(vmid), user, async (log) => {
        try {
          log(`create ${full ? "full" : "linked"} clone of mountpoint rootfs (local-lvm:vm-${vmid}-disk-0)`);
          await sleep(emu.timing.cloneMs);
          if (emu.faults.taskFails()) throw new Error(`clone failed: command 'lvcreate -n vm-${newid}-disk-0' failed: got timeout`);
          if (pool) cluster.poolMembers.add(newid);
          delete ct.conf.lock;
        } catch (e) {
          if (cluster.cts.get(newid) === ct) cluster.cts.delete(newid);
          throw e;
        } finally {
          if (src.conf.lock === "disk") delete src.conf.lock;
        }
      });
    },
  },
  {
    method: "GET", path: "/nodes/{node}/lxc/{vmid}/config", check: vmCheck("VM.Audit"),
    schema: { node: NODE, vmid: VMID, current: BOOL, snapshot: STR },
    handler: ({ emu, p }) => {
      const ct = emu.cluster.ct(String(p.node), Number(p.vmid));
      if (p.snapshot !== undefined) throw die(`snapshot '${p.snapshot}' does not exist`);
      const out: Conf = { ...ct.conf, digest: digest(ct.conf) };
      if (ct.conf.description !== undefined) out.description = descriptionOut(String(ct.conf.description));
      return out;
    },
  },
  {
    method: "PUT", path: "/nodes/{node}/lxc/{vmid}/config", check: vmCheck("VM.Audit"),
    schema: {
      node: NODE, vmid: VMID, cores: { type: "integer", optional: true, min: 1, max: 8192 }, memory: { type: "integer", optional: true, min: 16 },
      swap: { type: "integer", optional: true, min: 0 }, hostname: STR, description: { ...STR, maxLength: 8192 }, tags: STR, net0: STR,
      delete: STR, revert: STR, digest: STR,
    },
    handler: ({ emu, p }) => {
      const vmid = Number(p.vmid);
      const keys = Object.keys(p).filter((k) => !["node", "vmid", "digest"].includes(k));
      for (const k of keys) emu.acl.requireVm(vmid, CONFIG_PRIVS[k] ?? "VM.Config.Options");
      const ct = emu.cluster.ct(String(p.node), vmid);
      if (keys.length === 0) throw die("no options specified");
      const tags = p.tags === undefined ? undefined : normaliseTags(String(p.tags));
      const net0 = p.net0 === undefined ? undefined : normaliseNet(String(p.net0), /hwaddr=([0-9A-Fa-f:]+)/.exec(String(ct.conf.net0 ?? ""))?.[1]);
      lockConfig(emu, vmid);
      emu.cluster.checkLock(ct);
      if (p.digest !== undefined && p.digest !== digest(ct.conf)) throw die("detected modified configuration - file changed by other user? Try again.");
      for (const k of String(p.delete ?? "").split(/[,;\s]+/).filter(Boolean)) delete ct.conf[k];
      for (const k of ["cores", "memory", "swap", "hostname"]) if (p[k] !== undefined) ct.conf[k] = p[k]!;
      if (p.description !== undefined) ct.conf.description = String(p.description).replace(/\n+$/, "");
      if (tags !== undefined) tags ? (ct.conf.tags = tags) : delete ct.conf.tags;
      if (net0 !== undefined) ct.conf.net0 = net0;
      return null;
    },
  },
  {
    method: "DELETE", path: "/nodes/{node}/lxc/{vmid}", check: vmCheck("VM.Allocate"),
    schema: { node: NODE, vmid: VMID, purge: BOOL, force: BOOL, "destroy-unreferenced-disks": BOOL },
    handler: ({ emu, p, user }) => {
      const vmid = Number(p.vmid);
      const ct = emu.cluster.ct(String(p.node), vmid);
      lockConfig(emu, vmid);
      emu.cluster.checkLock(ct);
      if (ct.status === "running" && p.force !== 1) throw die(`unable to destroy CT ${vmid} - container is running`);
      const saved = ct.conf;
      ct.conf = { lock: "destroyed" };
      return emu.tasks.start(String(p.node), "vzdestroy", String(vmid), user, async (log) => {
        if (ct.sandboxId) {
          log(`stopping CT ${vmid}`);
          await emu.sandboxes.destroy(ct.sandboxId);
          ct.sandboxId = ct.address = undefined;
          ct.status = "stopped";
        }
        await sleep(emu.timing.destroyMs);
        if (emu.faults.taskFails()) {
          ct.conf = saved;
          throw new Error(`lvremove 'pve/vm-${vmid}-disk-0' error:   Logical volume pve/vm-${vmid}-disk-0 in use.`);
        }
        log(`  Logical volume "vm-${vmid}-disk-0" successfully removed.`);
        emu.cluster.cts.delete(vmid);
        emu.cluster.poolMembers.delete(vmid);
      });
    },
  },
  {
    method: "POST", path: "/nodes/{node}/lxc/{vmid}/snapshot", check: vmCheck("VM.Snapshot"),
    schema: { node: NODE, vmid: VMID, snapname: { type: "string", pattern: /^[a-z][a-z0-9_-]+$/i, maxLength: 40 }, description: STR },
    handler: ({ emu, p }) => {
      emu.cluster.ct(String(p.node), Number(p.vmid));
      throw die("snapshot feature is not available");
    },
  },
];

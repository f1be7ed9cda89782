/** CT list, clone, config GET/PUT and destroy. */
import { ApiError, die, paramError } from "../http.js";
import { descriptionOut, digest, diskGiB, normaliseNet, normaliseTags, randomMac, volumeStorages, type Conf } from "../cluster.js";
import type { Route } from "../context.js";
import { sleep } from "../tasks.js";
import { ctStatus } from "./cluster.js";
import { ctForUpdate, lockConfig, vmCheck } from "./common.js";

const CONFIG_PRIVS: Record<string, string> = {
  cores: "VM.Config.CPU", memory: "VM.Config.Memory", swap: "VM.Config.Memory", hostname: "VM.Config.Network",
  net0: "VM.Config.Network", description: "VM.Config.Options", tags: "VM.Config.Options", rootfs: "VM.Config.Disk",
};

/** Config PUT parameters that are not stored as they come. */
const SPECIAL = new Set(["node", "vmid", "digest", "delete", "revert", "description", "tags", "net0"]);

export const lxcRoutes: Route[] = [
  {
    method: "GET", path: "/nodes/{node}/lxc",
    handler: ({ emu, p }) => {
      emu.cluster.node(String(p.node));
      return [...emu.cluster.cts.values()]
        .filter((ct) => ct.node === p.node && emu.acl.canVm(ct.vmid, "VM.Audit"))
        .map((ct) => ({ ...ctStatus(emu, ct), vmid: ct.vmid }));
    },
  },
  {
    method: "POST", path: "/nodes/{node}/lxc/{vmid}/clone", check: vmCheck("VM.Clone"),
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
      // pve-container: a clone to another node needs every volume on shared storage.
      if (target !== node && !volumeStorages(src.conf).every((id) => cluster.storages.get(id)?.shared)) {
        throw die(`can't clone CT to node '${target}' (CT uses local storage)`);
      }
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
      const storage = p.storage === undefined ? volumeStorages({ rootfs: src.conf.rootfs ?? "local-lvm:" })[0]! : String(p.storage);
      if (!cluster.storages.has(storage)) throw die(`storage '${storage}' does not exist`);
      conf.rootfs = `${storage}:vm-${newid}-disk-0,size=${diskGiB(String(src.conf.rootfs ?? ""))}G`;
      // The new config lives on the source node until the clone ends, then moves to the target.
      const ct = { vmid: newid, node, conf, firewall: { ...src.firewall }, rules: src.rules.map((r) => ({ ...r })), status: "stopped" as const };
      cluster.cts.set(newid, ct);
      return emu.tasks.start(node, "vzclone", String(vmid), user, async (log) => {
        try {
          log(`create ${full ? "full" : "linked"} clone of mountpoint rootfs (local-lvm:vm-${vmid}-disk-0)`);
          await sleep(emu.timing.cloneMs);
          if (emu.faults.taskFails()) throw new Error(`clone failed: command 'lvcreate -n vm-${newid}-disk-0' failed: got timeout`);
          if (target !== node) {
            log(`move CT ${newid} to node '${target}'`);
            ct.node = target;
          }
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
    handler: ({ emu, p }) => {
      const vmid = Number(p.vmid);
      const keys = Object.keys(p).filter((k) => !["node", "vmid", "digest"].includes(k));
      for (const k of keys) emu.acl.requireVm(vmid, CONFIG_PRIVS[k] ?? "VM.Config.Options");
      const ct = emu.cluster.ct(String(p.node), vmid);
      if (keys.length === 0) throw die("no options specified");
      const tags = p.tags === undefined ? undefined : normaliseTags(String(p.tags));
      const net0 = p.net0 === undefined ? undefined : normaliseNet(String(p.net0), /hwaddr=([0-9A-Fa-f:]+)/.exec(String(ct.conf.net0 ?? ""))?.[1]);
      ctForUpdate(emu, p);
      for (const k of String(p.delete ?? "").split(/[,;\s]+/).filter(Boolean)) delete ct.conf[k];
      // Any other option the schema accepted is stored as given (PVE would also parse property strings).
      for (const [k, v] of Object.entries(p)) if (!SPECIAL.has(k) && v !== undefined) ct.conf[k] = v;
      if (p.description !== undefined) ct.conf.description = String(p.description).replace(/\n+$/, "");
      if (tags !== undefined) tags ? (ct.conf.tags = tags) : delete ct.conf.tags;
      if (net0 !== undefined) ct.conf.net0 = net0;
      return null;
    },
  },
  {
    method: "PUT", path: "/nodes/{node}/lxc/{vmid}/resize", check: vmCheck("VM.Config.Disk"),
    handler: ({ emu, p, user }) => {
      const vmid = Number(p.vmid);
      const ct = ctForUpdate(emu, p);
      const volume = String(ct.conf[String(p.disk)] ?? "");
      if (!volume) throw die(`disk '${p.disk}' does not exist`);
      const m = /^(\+)?(\d+(?:\.\d+)?)([KMGT]?)$/.exec(String(p.size))!;
      const gib = (n: number, unit: string) => n * ({ K: 1 / 2 ** 20, M: 1 / 1024, G: 1, T: 1024, "": 1 / 2 ** 30 }[unit] ?? 1);
      const now = diskGiB(volume);
      const wanted = m[1] ? now + gib(Number(m[2]), m[3]!) : gib(Number(m[2]), m[3]!);
      if (wanted < now) throw die("unable to shrink disk size");
      return emu.tasks.start(String(p.node), "resize", String(vmid), user, async (log) => {
        log(`  Size of logical volume pve/vm-${vmid}-disk-0 changed from ${now}.00 GiB to ${Math.ceil(wanted)}.00 GiB.`);
        ct.conf[String(p.disk)] = volume.replace(/size=[^,]+/, `size=${Math.ceil(wanted)}G`);
      });
    },
  },
  {
    method: "DELETE", path: "/nodes/{node}/lxc/{vmid}", check: vmCheck("VM.Allocate"),
    handler: ({ emu, p, user }) => {
      const vmid = Number(p.vmid);
      const ct = ctForUpdate(emu, p);
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
    handler: ({ emu, p }) => {
      emu.cluster.ct(String(p.node), Number(p.vmid));
      throw die("snapshot feature is not available");
    },
  },
];

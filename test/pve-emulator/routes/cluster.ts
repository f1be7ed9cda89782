/** /cluster/nextid, /cluster/resources, /pools, /nodes. */
import { ApiError, die, paramError } from "../http.js";
import type { Ct } from "../cluster.js";
import type { Emu, Route } from "../context.js";

/** The status object of a CT (GET …/status/current and the lists). */
export function ctStatus(emu: Emu, ct: Ct): Record<string, unknown> {
  const running = ct.status === "running";
  const out: Record<string, unknown> = {
    vmid: ct.vmid, status: ct.status, name: String(ct.conf.hostname ?? `CT${ct.vmid}`), type: "lxc",
    cpus: Number(ct.conf.cores ?? 1), maxmem: Number(ct.conf.memory) * 2 ** 20, maxswap: Number(ct.conf.swap ?? 0) * 2 ** 20,
    maxdisk: diskBytes(ct), disk: running ? 64 * 2 ** 20 : 0, mem: running ? 32 * 2 ** 20 : 0, swap: 0,
    uptime: running && ct.startedAt ? Math.floor((Date.now() - ct.startedAt) / 1000) : 0, cpu: 0,
    netin: 0, netout: 0, diskread: 0, diskwrite: 0,
  };
  if (running) out.pid = 10_000 + ct.vmid;
  if (ct.conf.tags) out.tags = ct.conf.tags;
  if (ct.conf.lock !== undefined) out.lock = ct.conf.lock;
  if (ct.conf.template) out.template = 1;
  void emu;
  return out;
}

const diskBytes = (ct: Ct) => Number(/size=(\d+)G/.exec(String(ct.conf.rootfs ?? ""))?.[1] ?? 8) * 2 ** 30;

function resource(emu: Emu, ct: Ct): Record<string, unknown> {
  const s = ctStatus(emu, ct);
  const out: Record<string, unknown> = {
    id: `lxc/${ct.vmid}`, type: "lxc", vmid: ct.vmid, node: ct.node, status: ct.status, name: s.name,
    template: ct.conf.template ? 1 : 0, uptime: s.uptime, maxcpu: s.cpus, cpu: 0, maxmem: s.maxmem, mem: s.mem,
    maxdisk: s.maxdisk, disk: s.disk, netin: 0, netout: 0, diskread: 0, diskwrite: 0,
  };
  if (ct.conf.tags) out.tags = ct.conf.tags;
  if (ct.conf.lock !== undefined) out.lock = ct.conf.lock;
  if (emu.cluster.poolMembers.has(ct.vmid) && emu.acl.canPool(emu.pool, "Pool.Audit")) out.pool = emu.pool;
  return out;
}

function nodeResource(emu: Emu, name: string): Record<string, unknown> {
  const n = emu.cluster.node(name);
  return {
    id: `node/${name}`, type: "node", node: name, status: "online", maxcpu: n.maxcpu, cpu: 0.02,
    maxmem: n.maxmem, mem: 2 * 2 ** 30 + emu.cluster.usedMem(name), maxdisk: 100 * 2 ** 30, disk: 10 * 2 ** 30,
    uptime: Math.floor(process.uptime()), level: "", "cgroup-mode": 2,
  };
}

const visible = (emu: Emu) => [...emu.cluster.cts.values()].filter((ct) => emu.acl.canVm(ct.vmid, "VM.Audit")).sort((a, b) => a.vmid - b.vmid);

export const clusterRoutes: Route[] = [
  {
    method: "GET", path: "/version",
    handler: ({ emu }) => ({ version: emu.version, release: emu.version.split(".").slice(0, 2).join("."), repoid: "2a5fa54a8503f96d" }),
  },
  {
    method: "GET", path: "/cluster/firewall/options",
    handler: ({ emu }) => {
      if (!emu.acl.canRoot("Sys.Audit")) throw new ApiError(403, "Permission check failed (/, Sys.Audit)");
      return { ...emu.cluster.firewall };
    },
  },
  {
    method: "GET", path: "/nodes/{node}/storage",
    handler: ({ emu, p }) => {
      emu.cluster.node(String(p.node));
      if (!emu.acl.canStorage("Datastore.Audit") && !emu.acl.canStorage("Datastore.AllocateSpace")) return [];
      return [...emu.cluster.storages.values()].filter((s) => p.storage === undefined || s.id === p.storage).map((s) => ({
        storage: s.id, type: s.type, shared: s.shared ? 1 : 0, content: "rootdir,images", active: 1, enabled: 1,
        total: 100 * 2 ** 30, used: 10 * 2 ** 30, avail: 90 * 2 ** 30,
      }));
    },
  },
  {
    method: "GET", path: "/cluster/nextid",
    handler: ({ emu, p }) => {
      if (p.vmid !== undefined) {
        if (emu.cluster.cts.has(Number(p.vmid))) throw paramError({ vmid: `VM ${p.vmid} already exists` });
        return Number(p.vmid);
      }
      return emu.cluster.nextId();
    },
  },
  {
    method: "GET", path: "/cluster/resources",
    handler: ({ emu, p }) => {
      const vms = p.type === undefined || p.type === "vm" ? visible(emu).map((ct) => resource(emu, ct)) : [];
      const nodes = p.type === undefined || p.type === "node" ? emu.cluster.nodes.map((n) => nodeResource(emu, n.name)) : [];
      return [...vms, ...nodes];
    },
  },
  {
    method: "GET", path: "/nodes",
    handler: ({ emu }) => emu.cluster.nodes.map((n) => {
      const r = nodeResource(emu, n.name);
      return { node: n.name, status: "online", type: "node", id: r.id, maxmem: r.maxmem, mem: r.mem, maxcpu: r.maxcpu, cpu: r.cpu, uptime: r.uptime };
    }),
  },
  {
    method: "GET", path: "/pools",
    handler: ({ emu, p }) => {
      if (p.poolid !== undefined && p.poolid !== emu.pool) throw die(`pool '${p.poolid}' does not exist`);
      if (!emu.acl.canPool(emu.pool, "Pool.Audit") && p.poolid === undefined) return [];
      const members = p.type === "storage" ? [] : [...emu.cluster.poolMembers].sort((a, b) => a - b).flatMap((vmid) => {
        const ct = emu.cluster.cts.get(vmid);
        if (!ct) return [];
        const r = resource(emu, ct);
        if (emu.poolMemberFields === "declared") return [{ id: r.id, node: r.node, type: r.type, vmid: r.vmid }];
        delete r.tags;
        delete r.lock;
        delete r.pool;
        return [r];
      });
      return [{ poolid: emu.pool, comment: "sandboxes", members }];
    },
  },
  {
    method: "GET", path: "/pools/{poolid}",
    handler: ({ emu, p }) => {
      if (p.poolid !== emu.pool || !emu.acl.canPool(emu.pool, "Pool.Audit")) throw new ApiError(403, `Permission check failed (/pool/${p.poolid}, Pool.Audit)`);
      return { comment: "sandboxes", members: [...emu.cluster.poolMembers].map((v) => emu.cluster.cts.get(v)).filter(Boolean).map((ct) => resource(emu, ct!)) };
    },
  },
];

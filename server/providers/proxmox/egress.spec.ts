/**
 * Egress control on Proxmox, on the PVE emulator (whose CTs are real local
 * sandboxes): start() refuses a template whose firewall does not begin with
 * GROUP sandboxd-egress unless SANDBOXD_PROXMOX_ALLOW_UNSAFE_TEMPLATE has
 * `egress` (then it warns); setEgressAllow writes `OUT ACCEPT` rules marked
 * sandboxd-allow above the group, which really open a private service to a
 * sandbox with internet off, and [] closes it again; the list is read back
 * from the rules by a restarted provider.
 *
 * The private service is the test's own: servers in a network namespace
 * (test/fixtures/internet.ts startFakeLan) at 10.99.189.x, reached only by
 * packets from the emulator runtime's bridge. Sandbox network 198.18.189.192/27.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { proxmoxConfigOf, startEmulator, type Emulator } from "../../../test/pve-emulator/index.js";
import { PveClient as AdminClient } from "../../../test/pve-emulator/testing.js";
import { startFakeLan, type FakeLan } from "../../../test/fixtures/internet.js";
import { tcpProbe } from "../../../test/fixtures/probes.js";
import { isSandboxError } from "../../errors.js";
import { sshExec } from "../local/testing.js";
import type { Logger } from "../local/options.js";
import type { SandboxHandle } from "../provider.js";
import { ALLOW_COMMENT } from "./allowlist.js";
import { ProxmoxProvider } from "./provider.js";

const FAST = { cloneMs: 150, startMs: 50, ipDelayMs: 50, stopMs: 10, destroyMs: 10, authFailDelayMs: 100 };
const N = 189;
const DB = `10.99.${N}.2`;
const OTHER = `10.99.${N}.3`;
const UNSAFE = "SANDBOXD_PROXMOX_ALLOW_UNSAFE_TEMPLATE";

type Line = { level: string; obj: Record<string, unknown>; msg: string };
function recorder(): Logger & { warns: () => Line[] } {
  const lines: Line[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj: obj as Record<string, unknown>, msg: msg ?? "" });
  return { warns: () => lines.filter((l) => l.level === "warn"), debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

const probes = async (h: SandboxHandle, targets: Array<[string, number]>) =>
  (await sshExec(h.ssh, targets.map(([a, p]) => tcpProbe(a, p)).join("; "))).stdout.trim().split("\n");

describe("Proxmox start() and a template without the egress group", () => {
  it("refuses it, naming the group and the waiver; with the waiver starts and warns loudly", async () => {
    const emu = await startEmulator({ port: 0, timing: FAST, instance: "pve-emu-t-egress-tpl", subnet: "198.18.189.224/27", template: { egressGroup: false } });
    try {
      const refused = new ProxmoxProvider(proxmoxConfigOf(emu.connection));
      const err = await refused.start().then(() => undefined, (e: unknown) => e).finally(() => refused.close());
      expect(isSandboxError(err, "failed_precondition"), String(err)).toBe(true);
      const msg = (err as Error).message;
      expect(msg).toContain("template CT 9000 on pve is unsafe for untrusted code");
      expect(msg).toContain('its first firewall rule is not "GROUP sandboxd-egress"');
      expect(msg).toContain(`${UNSAFE}=egress`);

      const log = recorder();
      const waived = new ProxmoxProvider(proxmoxConfigOf(emu.connection, { allowUnsafeTemplate: ["egress"] }), { logger: log });
      await waived.start().finally(() => waived.close());
      const warns = log.warns().filter((l) => l.obj.setting === UNSAFE);
      expect(warns).toHaveLength(1);
      expect(warns[0]!.msg).toMatch(/^UNSAFE: template CT 9000 on pve: its first firewall rule is not "GROUP sandboxd-egress"/);
      expect(warns[0]!.msg).toContain(`because ${UNSAFE} includes egress`);
      expect(emu.rejectedRequests()).toEqual([]);
    } finally {
      await emu.close();
    }
  });
});

describe("Proxmox egress allowlist: sandboxd-allow rules above the egress group", () => {
  let emu: Emulator;
  let admin: AdminClient;
  let provider: ProxmoxProvider;
  let lan: FakeLan | undefined;
  let h: SandboxHandle;
  const others: ProxmoxProvider[] = [];
  const node = () => emu.connection.nodes[0]!;
  const vmid = () => Number(h.id.split("-")[1]);
  const rules = async () => (await admin.data("GET", `/nodes/${node()}/lxc/${vmid()}/firewall/rules`)) as Array<Record<string, unknown>>;
  const shape = (list: Array<Record<string, unknown>>) => list.map((r) => [r.type, r.action, r.dest, r.proto, r.dport, r.comment, r.enable].filter((x) => x !== undefined).join(" "));

  beforeAll(async () => {
    emu = await startEmulator({ port: 0, timing: FAST, instance: "pve-emu-t-egress", subnet: "198.18.189.192/27" });
    admin = new AdminClient(emu.connection);
    provider = new ProxmoxProvider(proxmoxConfigOf(emu.connection));
    await provider.start();
    h = await provider.create({ cores: 1, memoryMiB: 256, diskGiB: 1, internet: false, labels: { owner: "egress-spec" } });
    // The runtime's bridge exists once a CT has started.
    lan = await startFakeLan(N, emu.sandboxes.runtime.names.bridge, [DB, OTHER], { ports: [8080, 80] });
  });

  afterAll(async () => {
    try {
      for (const p of others) await p.close().catch(() => {});
      if (h) await provider?.destroy(h.id).catch(() => {});
      if (emu) expect(emu.containers().filter((c) => c.vmid !== emu.connection.templateId)).toEqual([]);
      if (emu) expect(emu.rejectedRequests()).toEqual([]);
      if (emu) expect(emu.sandboxes.allowChanges.filter((c) => c.error)).toEqual([]);
    } finally {
      await provider?.close();
      await lan?.close();
      await emu?.close();
    }
  });

  it("a clone starts with the template's rules: the group first, no allowlist", async () => {
    expect(shape(await rules())).toEqual(["group sandboxd-egress 1", "in ACCEPT tcp 22 1"]);
    expect((await provider.get(h.id))?.egressAllow).toBeUndefined();
    expect(await probes(h, [[DB, 8080]])).toEqual(["refused"]);
  });

  it("an address:port entry opens that service (TCP and UDP rules) with internet off, nothing else; [] closes it", async () => {
    expect(await provider.setEgressAllow(h.id, [`${DB}:8080`])).toEqual([`${DB}:8080`]);
    expect(shape(await rules())).toEqual([
      `out ACCEPT ${DB} tcp 8080 ${ALLOW_COMMENT} 1`, `out ACCEPT ${DB} udp 8080 ${ALLOW_COMMENT} 1`, "group sandboxd-egress 1", "in ACCEPT tcp 22 1",
    ]);
    expect((await provider.get(h.id))?.spec.internet).toBe(false);
    expect(await probes(h, [[DB, 8080], [DB, 80], [OTHER, 8080]])).toEqual(["open", "refused", "refused"]);

    expect(await provider.setEgressAllow(h.id, [])).toEqual([]);
    expect(shape(await rules())).toEqual(["group sandboxd-egress 1", "in ACCEPT tcp 22 1"]);
    expect(await probes(h, [[DB, 8080]])).toEqual(["refused"]);
  });

  it("replacing the list leaves other rules alone: a CIDR opens every port in it, then [] closes all", async () => {
    // An operator's own rule (a POST always goes first): sandboxd never touches it.
    await admin.data("POST", `/nodes/${node()}/lxc/${vmid()}/firewall/rules`, { form: { type: "in", action: "ACCEPT", proto: "tcp", dport: "8080", enable: "1", comment: "operator" } });
    expect(await provider.setEgressAllow(h.id, [`${DB}:8080`])).toEqual([`${DB}:8080`]);
    expect(await provider.setEgressAllow(h.id, [`10.99.${N}.0/24`, `${DB}:8080`])).toEqual([`10.99.${N}.0/24`, `${DB}:8080`]);
    expect(shape(await rules())).toEqual([
      `out ACCEPT 10.99.${N}.0/24 ${ALLOW_COMMENT} 1`, `out ACCEPT ${DB} tcp 8080 ${ALLOW_COMMENT} 1`, `out ACCEPT ${DB} udp 8080 ${ALLOW_COMMENT} 1`,
      "in ACCEPT tcp 8080 operator 1", "group sandboxd-egress 1", "in ACCEPT tcp 22 1",
    ]);
    expect(await probes(h, [[DB, 80], [OTHER, 8080]])).toEqual(["open", "open"]);

    await provider.setEgressAllow(h.id, []);
    expect(shape(await rules())).toEqual(["in ACCEPT tcp 8080 operator 1", "group sandboxd-egress 1", "in ACCEPT tcp 22 1"]);
    expect(await probes(h, [[DB, 80], [OTHER, 8080]])).toEqual(["refused", "refused"]);
    await admin.data("DELETE", `/nodes/${node()}/lxc/${vmid()}/firewall/rules/0`);
  });

  it("refuses malformed entries and what a sandbox never reaches with invalid_argument, an unknown id with not_found", async () => {
    for (const bad of ["db.internal:5432", "10.0.0.1/8", "10.0.0.0/33", `${DB}:0`, "198.18.0.0/16", "127.0.0.1:80"]) {
      await expect(provider.setEgressAllow(h.id, [bad]), bad).rejects.toSatisfy((e) => isSandboxError(e, "invalid_argument"));
    }
    await expect(provider.setEgressAllow(h.id, Array.from({ length: 65 }, (_, i) => `10.1.0.${i}`))).rejects.toSatisfy((e) => isSandboxError(e, "invalid_argument"));
    const denying = new ProxmoxProvider(proxmoxConfigOf(emu.connection), { egressDeny: ["10.99.0.0/16"] });
    others.push(denying);
    await expect(denying.setEgressAllow(h.id, [`${DB}:8080`])).rejects.toSatisfy((e) => isSandboxError(e, "invalid_argument") && /SANDBOXD_EGRESS_DENY/.test(String(e)));
    await expect(provider.setEgressAllow("sbx-4242-deadbeef", [`${DB}:8080`])).rejects.toSatisfy((e) => isSandboxError(e, "not_found"));
    await expect(provider.setEgressAllow("not-an-id", [])).rejects.toSatisfy((e) => isSandboxError(e, "not_found"));
    expect(shape(await rules())).toEqual(["group sandboxd-egress 1", "in ACCEPT tcp 22 1"]);
  });

  it("survives a restart: a new provider reads the list back from the rules (get and list)", async () => {
    await provider.setEgressAllow(h.id, [`${DB}:8080`, `10.99.${N}.0/28`]);
    const later = new ProxmoxProvider(proxmoxConfigOf(emu.connection));
    others.push(later);
    await later.start();
    expect((await later.get(h.id))?.egressAllow).toEqual([`${DB}:8080`, `10.99.${N}.0/28`]);
    expect((await later.list()).find((x) => x.id === h.id)?.egressAllow).toEqual([`${DB}:8080`, `10.99.${N}.0/28`]);
    // The same list again writes nothing.
    const before = emu.requestCount().byRoute["POST /nodes/{node}/lxc/{vmid}/firewall/rules"] ?? 0;
    expect(await later.setEgressAllow(h.id, [`${DB}:8080`, `10.99.${N}.0/28`])).toEqual([`${DB}:8080`, `10.99.${N}.0/28`]);
    expect(emu.requestCount().byRoute["POST /nodes/{node}/lxc/{vmid}/firewall/rules"] ?? 0).toBe(before);
    expect(await later.setEgressAllow(h.id, [])).toEqual([]);
    expect((await provider.get(h.id))?.egressAllow).toBeUndefined();
  });

  it("concurrent writers end with one of the lists, whole", async () => {
    const second = new ProxmoxProvider(proxmoxConfigOf(emu.connection));
    others.push(second);
    const a = [`${DB}:8080`, `${OTHER}:8080`];
    const b = [`10.99.${N}.0/24`];
    const results = await Promise.allSettled([provider.setEgressAllow(h.id, a), second.setEgressAllow(h.id, b), provider.setEgressAllow(h.id, b)]);
    expect(results.map((r) => (r.status === "rejected" ? String(r.reason) : r.status))).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
    const final = (await provider.get(h.id))?.egressAllow;
    expect([a, b]).toContainEqual(final);
    const ours = (await rules()).filter((r) => r.comment === ALLOW_COMMENT);
    expect(ours.map((r) => r.pos)).toEqual(ours.map((_, i) => i));
    expect(ours).toHaveLength(final!.length === 1 ? 1 : 4);
    await provider.setEgressAllow(h.id, []);
  });
});

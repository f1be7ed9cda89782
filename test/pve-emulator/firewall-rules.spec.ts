/**
 * The emulator's CT firewall rules, as pve-firewall 6.0.4 serves them
 * (API2/Firewall/Rules.pm): listed with pos and one digest; a POST always
 * puts its rule first (its pos is ignored) and leaves it disabled without
 * enable=1; a DELETE moves the later rules up and refuses a stale digest;
 * verify_rule's refusals; permissions; clones copy the template's rules; and
 * which rules become the real sandbox's allowlist. No CT is started here:
 * the sandbox side is covered by server/providers/proxmox/egress.spec.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allowEntries, type FwRule } from "./fw-rules.js";
import { startEmulator, type Emulator } from "./index.js";
import { PveClient } from "./testing.js";

const FAST = { cloneMs: 20, startMs: 20, ipDelayMs: 20, stopMs: 10, destroyMs: 10, authFailDelayMs: 10 };
// Never started (no CT runs here), so the runtime makes no host objects; a subnet of its own all the same.
const NET = { instance: "pve-emu-t-fwrules", subnet: "198.18.189.224/27" };

describe("pve emulator: CT firewall rules", () => {
  let emu: Emulator;
  let c: PveClient;
  beforeAll(async () => {
    emu = await startEmulator({ port: 0, timing: FAST, ...NET });
    c = new PveClient(emu.connection);
  });
  afterAll(async () => {
    await emu?.close();
  });
  const node = () => emu.connection.nodes[0]!;
  const path = (vmid: number) => `/nodes/${node()}/lxc/${vmid}/firewall/rules`;
  const list = async (vmid: number) => (await c.data("GET", path(vmid))) as Array<Record<string, unknown>>;
  const post = (vmid: number, form: Record<string, string>) => c.request("POST", path(vmid), { form });

  it("a template's rules start with the egress group, and a clone copies them", async () => {
    const tpl = emu.connection.templateId;
    const rules = await list(tpl);
    const digest = rules[0]!.digest;
    expect(digest).toMatch(/^[0-9a-f]{40}$/);
    expect(rules).toEqual([
      { pos: 0, type: "group", action: "sandboxd-egress", enable: 1, digest },
      { pos: 1, type: "in", action: "ACCEPT", proto: "tcp", dport: "22", enable: 1, digest },
    ]);
    const upid = await c.data("POST", `/nodes/${node()}/lxc/${tpl}/clone`, { form: { newid: "120", full: "1", pool: emu.connection.pool } });
    await c.waitTask(node(), upid);
    expect(await list(120)).toEqual(rules);
  });

  it("POST puts the rule first whatever its pos, disabled unless enable=1; DELETE shifts the rest up", async () => {
    expect((await post(120, { type: "out", action: "ACCEPT", dest: "10.1.2.3", proto: "tcp", dport: "5432", pos: "1", comment: " db " })).status).toBe(200);
    expect((await post(120, { type: "out", action: "ACCEPT", dest: "10.0.0.0/8", enable: "1" })).status).toBe(200);
    const rules = await list(120);
    expect(rules.map((r) => [r.pos, r.type, r.action, r.dest, r.enable, r.comment, r.ipversion])).toEqual([
      [0, "out", "ACCEPT", "10.0.0.0/8", 1, undefined, 4],
      [1, "out", "ACCEPT", "10.1.2.3", 0, "db", 4],
      [2, "group", "sandboxd-egress", undefined, 1, undefined, undefined],
      [3, "in", "ACCEPT", undefined, 1, undefined, undefined],
    ]);
    const stale = rules[0]!.digest as string;
    expect((await c.request("DELETE", `${path(120)}/1?digest=${stale}`)).status).toBe(200);
    expect((await list(120)).map((r) => [r.pos, r.type, r.dest ?? null])).toEqual([[0, "out", "10.0.0.0/8"], [1, "group", null], [2, "in", null]]);
    const refused = await c.request("DELETE", `${path(120)}/0?digest=${stale}`);
    expect([refused.status, refused.reason]).toEqual([500, "detected modified configuration - file changed by other user? Try again."]);
    const missing = await c.request("DELETE", `${path(120)}/7`);
    expect([missing.status, missing.reason]).toEqual([500, "no rule at position 7"]);
    expect((await c.request("DELETE", `${path(120)}/0`)).status).toBe(200);
    expect((await list(120)).map((r) => r.type)).toEqual(["group", "in"]);
  });

  it("refuses what verify_rule refuses, on the parameter PVE names", async () => {
    const errorsOf = async (form: Record<string, string>) => {
      const a = await post(120, { type: "out", action: "ACCEPT", ...form });
      return a.status === 400 ? a.body.errors : a.status;
    };
    expect(await errorsOf({ dport: "80" })).toEqual({ proto: "missing property - 'dport' requires this property" });
    expect(await errorsOf({ proto: "icmp", dport: "80" })).toEqual(200);
    expect(await errorsOf({ proto: "tcp", dport: "echo-request" })).toEqual({ dport: "invalid port 'echo-request'" });
    expect(await errorsOf({ proto: "gre", dport: "80" })).toEqual({ dport: "protocol 'gre' does not support ports" });
    expect(await errorsOf({ proto: "tcp", "icmp-type": "echo-request" })).toEqual({ proto: "missing property - 'icmp-type' requires this property" });
    expect(await errorsOf({ dest: "+sandboxd-private" })).toEqual({ dest: "no such ipset 'sandboxd-private'" });
    expect(await errorsOf({ dest: "mydb" })).toEqual({ dest: "no such alias 'mydb'" });
    expect(await errorsOf({ source: "10.0.0.1", dest: "::1" })).toEqual({ dest: "detected mixed ipv4/ipv6 addresses in rule" });
    expect(await errorsOf({ iface: "eth0" })).toEqual({ iface: "value does not match the regex pattern 'net\\d+'" });
    expect(await errorsOf({ type: "forward" })).toEqual({ type: "invalid rule type 'forward' for rule_env 'ct'" });
    expect(await errorsOf({ action: "ALLOW" })).toEqual({ action: "unknown action 'ALLOW'" });
    // PVE's schema (test/pve-schema) first: recorded as rejected requests.
    const rejected = emu.rejectedRequests().length;
    expect(await errorsOf({ dest: "10.0.0.1/8" })).toEqual({ dest: "invalid format - invalid IP address: Invalid prefix 00001010000000000000000000000001/8\n" });
    expect(await errorsOf({ proto: "tcp", dport: "70000" })).toEqual({ dport: "invalid format - invalid port '70000'\n" });
    expect(emu.rejectedRequests().length).toBe(rejected + 2);
    await c.request("DELETE", `${path(120)}/0`); // the icmp rule that was accepted
    expect((await list(120)).map((r) => r.type)).toEqual(["group", "in"]);
  });

  it("asks VM.Audit to list and VM.Config.Network to change", async () => {
    const ro = await startEmulator({ port: 0, timing: FAST, ...NET, privileges: ["VM.Audit", "Pool.Audit"] });
    try {
      const rc = new PveClient(ro.connection);
      const p = `/nodes/${ro.connection.nodes[0]}/lxc/${ro.connection.templateId}/firewall/rules`;
      expect((await rc.request("GET", p)).status).toBe(200);
      expect((await rc.request("POST", p, { form: { type: "out", action: "ACCEPT" } })).status).toBe(403);
      expect((await rc.request("DELETE", `${p}/0`)).status).toBe(403);
    } finally {
      await ro.close();
    }
  });

  it("turns enabled OUT ACCEPT rules above the group into the sandbox's allowlist", () => {
    const r = (x: Partial<FwRule>): FwRule => ({ type: "out", action: "ACCEPT", enable: 1, ...x });
    const group = r({ type: "group", action: "sandboxd-egress" });
    expect(allowEntries([
      r({ dest: "10.1.2.3", proto: "tcp", dport: "5432" }), r({ dest: "10.1.2.3", proto: "udp", dport: "5432" }), r({ dest: "10.2.0.0/16" }),
      r({ dest: "10.3.0.1", enable: 0 }), r({ dest: "10.4.0.1", source: "10.9.9.9" }), r({ dest: "10.5.0.1-10.5.0.9" }), r({ dest: "10.6.0.1", proto: "tcp", dport: "80:90" }),
      r({ action: "REJECT", dest: "10.7.0.1" }), group, r({ dest: "10.8.0.1" }), r({ dest: "8.8.8.8", proto: "udp", dport: "53" }),
    ])).toEqual(["10.1.2.3:5432", "10.2.0.0/16", "8.8.8.8:53"]);
    expect(allowEntries([group, r({ type: "in", action: "ACCEPT", proto: "tcp", dport: "22" })])).toEqual([]);
  });
});

/**
 * The egress settings' parsing (config, allowlist entries) and the Proxmox
 * container-firewall configuration derived from them.
 */
import { describe, expect, it } from "vitest";
import { EgressSyntaxError, checkEgressAllow, mergeCidrs, parseCidr, parseCidrList, parseEgressEntry, parsePorts } from "./egress.js";
import { allowFromRules, allowRules, holds } from "./proxmox/allowlist.js";
import { clusterFirewallConfig, egressGroupProblem, portComplement } from "./proxmox/firewall.js";

describe("egress settings", () => {
  it("parses CIDRs strictly", () => {
    expect(parseCidr("10.0.0.0/8")).toBe("10.0.0.0/8");
    expect(parseCidr(" 192.0.2.7 ")).toBe("192.0.2.7/32");
    for (const bad of ["10.0.0.1/8", "10.0.0.0/33", "10.0.0", "300.0.0.0/8", "example.com", ""]) {
      expect(() => parseCidr(bad), bad).toThrow(EgressSyntaxError);
    }
    expect(parseCidrList("10.0.0.0/8, 192.168.0.0/16,,")).toEqual(["10.0.0.0/8", "192.168.0.0/16"]);
  });

  it("parses ports: any, lists and ranges", () => {
    expect(parsePorts("any")).toBeUndefined();
    expect(parsePorts("80,443,8000-8100")).toEqual([[80, 80], [443, 443], [8000, 8100]]);
    for (const bad of ["0", "65536", "90-80", "http", ","]) expect(() => parsePorts(bad), bad).toThrow(EgressSyntaxError);
  });

  it("parses allowlist entries: CIDR or address, optional port, no host names", () => {
    expect(parseEgressEntry("10.1.2.3:5432")).toEqual({ cidr: "10.1.2.3/32", port: 5432 });
    expect(parseEgressEntry("10.1.0.0/16")).toEqual({ cidr: "10.1.0.0/16" });
    for (const bad of ["db.internal:5432", "10.1.2.3:0", "10.1.2.3:70000", "10.1.2.3/16:80"]) expect(() => parseEgressEntry(bad), bad).toThrow(EgressSyntaxError);
  });

  it("merges overlapping and adjacent CIDRs for nftables interval sets", () => {
    expect(mergeCidrs(["10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/8", "192.0.2.7/32"])).toEqual(["10.0.0.0-11.255.255.255", "192.0.2.7"]);
  });
});

describe("Proxmox: the egress group and IPSets for cluster.fw", () => {
  it("rejects the private ranges and the node's networks, with the exceptions as nomatch entries; only REJECT rules", () => {
    const cfg = clusterFirewallConfig({ deny: ["203.0.113.7/32"], allow: ["10.20.0.0/16"], newConnRate: 50 }, ["192.168.1.0/24"], ["192.168.1.1"]);
    expect(cfg).toContain("[IPSET sandboxd-private]");
    for (const c of ["10.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10", "192.168.1.0/24", "203.0.113.7/32", "!10.20.0.0/16", "!192.168.1.1/32"]) expect(cfg).toContain(`\n${c}\n`);
    expect(cfg).toContain("OUT REJECT -dest +sandboxd-private\n");
    expect(cfg).toContain("OUT REJECT -dest +sandboxd-dns -p udp -dport 1:52,54:65535\n");
    // A group ACCEPT would override the internet toggle (policy_out).
    expect(cfg).not.toMatch(/OUT ACCEPT/);
  });

  it("closes every port but the configured ones and DNS", () => {
    expect(portComplement([[80, 80], [443, 443]])).toBe("1:52,54:79,81:442,444:65535");
    expect(portComplement([[1, 65535]])).toBe("");
    const cfg = clusterFirewallConfig({ deny: [], allow: [], ports: [[80, 80], [443, 443]], newConnRate: 50 }, [], []);
    expect(cfg).toContain("OUT REJECT -p tcp -dport 1:52,54:79,81:442,444:65535\nOUT REJECT -p udp -dport 1:52,54:79,81:442,444:65535\nOUT REJECT -p icmp\n");
  });

  it("tells whether a container's rules start with the group", () => {
    expect(egressGroupProblem([{ pos: 0, type: "group", action: "sandboxd-egress" }, { pos: 1, type: "in", action: "ACCEPT" }])).toBeUndefined();
    expect(egressGroupProblem([])).toMatch(/no rules/);
    expect(egressGroupProblem([{ pos: 0, type: "out", action: "ACCEPT" }, { pos: 1, type: "group", action: "sandboxd-egress" }])).toMatch(/first/);
    expect(egressGroupProblem([{ pos: 0, type: "group", action: "sandboxd-egress", enable: 0 }])).toMatch(/disabled/);
  });
});

describe("per-sandbox allowlists", () => {
  it("are checked alike on every provider: well-formed, never the sandbox networks or loopback, nor SANDBOXD_EGRESS_DENY", () => {
    expect(checkEgressAllow(["10.1.2.3:5432", "10.0.0.0/8", "10.1.2.3:5432"], [])).toEqual([{ cidr: "10.1.2.3/32", port: 5432 }, { cidr: "10.0.0.0/8" }]);
    for (const bad of ["db:5432", "198.18.0.0/16", "198.19.7.1", "127.0.0.1:80", "0.0.0.0/0"]) expect(() => checkEgressAllow([bad], []), bad).toThrow(EgressSyntaxError);
    expect(() => checkEgressAllow(["10.9.0.0/16"], ["10.9.1.0/24"])).toThrow(/SANDBOXD_EGRESS_DENY/);
    expect(() => checkEgressAllow(Array.from({ length: 65 }, (_, i) => `10.0.0.${i}`), [])).toThrow(/at most 64/);
  });

  it("are OUT ACCEPT rules marked sandboxd-allow on Proxmox: tcp and udp for a port, read back in order", () => {
    const rules = [...allowRules({ cidr: "10.1.2.3/32", port: 5432 }), ...allowRules({ cidr: "10.0.0.0/8" })];
    expect(rules).toEqual([
      { type: "out", action: "ACCEPT", dest: "10.1.2.3", proto: "tcp", dport: "5432" },
      { type: "out", action: "ACCEPT", dest: "10.1.2.3", proto: "udp", dport: "5432" },
      { type: "out", action: "ACCEPT", dest: "10.0.0.0/8" },
    ]);
    const listed = [
      ...rules.map((r, pos) => ({ ...r, pos, enable: 1, comment: "sandboxd-allow" })),
      { pos: 3, type: "out", action: "ACCEPT", dest: "10.7.0.1", enable: 1, comment: "operator" },
      { pos: 4, type: "group", action: "sandboxd-egress", enable: 1 },
    ];
    expect(allowFromRules(listed)).toEqual(["10.1.2.3:5432", "10.0.0.0/8"]);
    expect(holds(listed, rules)).toBe(true);
    expect(holds(listed, rules.slice(1))).toBe(false);
    expect(holds([listed[3]!, ...listed.slice(0, 3).map((r) => ({ ...r, pos: r.pos + 1 }))], rules)).toBe(false); // not on top
    expect(allowFromRules([{ ...listed[0]!, enable: 0 }])).toEqual([]);
  });
});

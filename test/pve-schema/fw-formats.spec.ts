/**
 * The firewall rule formats (fw-formats.ts) give pve-firewall's answers.
 * Every expected value below was produced by pve-firewall 6.0.4's own subs
 * (parse_address_list, parse_port_name_number_or_range, pve_fw_verify_*)
 * running on Net::IP 1.26 (libnet-ip-perl) with Debian's /etc/services and
 * /etc/protocols, and pve-common's pve_verify_iface.
 */
import { describe, expect, it } from "vitest";
import { Die, NAMED_FORMATS } from "./formats.js";
import { netIp } from "./fw-formats.js";
import { validateParams } from "./validate.js";

const POST = "POST /nodes/{node}/lxc/{vmid}/firewall/rules";
const DELETE = "DELETE /nodes/{node}/lxc/{vmid}/firewall/rules/{pos}";
const CT = { node: "pve1", vmid: "105" };

/** "OK", or "ERR <message>" with newlines shown as \n. */
function check(format: string, value: string): string {
  try {
    NAMED_FORMATS[format]!(value);
    return "OK";
  } catch (e) {
    if (!(e instanceof Die)) throw e;
    return `ERR ${e.msg.replace(/\n/g, "\\n")}`;
  }
}

describe("Net::IP->new, as parse_address_list uses it", () => {
  it.each([
    ["10.1.2.3", "10.1.2.3"], ["10.0.0.0/8", "10.0.0.0"], ["10.1", "10.1.0.0"], ["10.0.0.1-10.0.0.5", "10.0.0.1"], ["0.0.0.0/0", "0.0.0.0"],
    ["10.0.0.0/abc", "10.0.0.0"], ["::1", "0000:0000:0000:0000:0000:0000:0000:0001"], ["::ffff:10.1.2.3", "0000:0000:0000:0000:0000:ffff:0a01:0203"],
    ["2001:db8::/32", "2001:0db8:0000:0000:0000:0000:0000:0000"],
  ])("takes %s (ip %s)", (data, ip) => {
    expect(netIp(data)).toEqual({ ip });
  });

  it.each([
    ["10.0.0.1/8", "Invalid prefix 00001010000000000000000000000001/8"],
    ["10.0.0.0/33", "Prefix length 33 is longer than IP address (32)"],
    ["10.0.0.256", "Invalid quad in IP address 10.0.0.256 - 256"],
    ["10..0.1", "Empty quad in IP address 10..0.1"],
    ["10.0.0.1.", "Invalid IP 10.0.0.1. - ends with a dot"],
    ["1.2.3.4.5", "Invalid IP address 1.2.3.4.5"],
    ["abc", "Invalid chars in IP abc"],
    ["10.0.0.5-10.0.0.1", "Begin address is greater than End address 10.0.0.5 - 10.0.0.1"],
    ["10.0.0.1-::1", "Not a valid IPv4 address ::1"],
    ["2001:db8::1::2", "Invalid address 2001:db8::1::2 (More than one :: pattern)"],
    ["1:2:3:4:5:6:7", "Invalid number of octets 1:2:3:4:5:6:7"],
    ["fe80::1/64", `Invalid prefix 1111111010${"0".repeat(117)}1/64`],
  ])("refuses %s: %s", (data, error) => {
    expect(netIp(data)).toEqual({ error });
  });
});

describe("pve-firewall's rule formats", () => {
  it.each([
    ["pve-fw-addr-spec", "10.0.0.0/8", "OK"],
    ["pve-fw-addr-spec", "+sandboxd-private", "OK"],
    ["pve-fw-addr-spec", `+${"a".repeat(65)}`, "ERR ipset name too long\\n"],
    ["pve-fw-addr-spec", "dc/myalias", "OK"],
    ["pve-fw-addr-spec", "a".repeat(65), "ERR alias name too long\\n"],
    ["pve-fw-addr-spec", "10.0.0.1,10.0.0.2", "OK"],
    ["pve-fw-addr-spec", "10.0.0.1,", "ERR extraneous commas in list\\n"],
    ["pve-fw-addr-spec", "10.0.0.1,,10.0.0.2", "ERR invalid IP address: Invalid chars in IP \\n"],
    ["pve-fw-addr-spec", "10.0.0.1-10.0.0.5,10.0.0.9", "ERR you can't use a range in a list\\n"],
    ["pve-fw-addr-spec", "10.0.0.1,::1", "ERR detected mixed ipv4/ipv6 addresses in address list '10.0.0.1,::1'\\n"],
    ["pve-fw-addr-spec", "10.0.0.1/8", "ERR invalid IP address: Invalid prefix 00001010000000000000000000000001/8\\n"],
    ["pve-fw-dport-spec", "5432", "OK"],
    ["pve-fw-dport-spec", "1:52,54:65535", "OK"],
    ["pve-fw-dport-spec", "65536", "ERR invalid port '65536'\\n"],
    ["pve-fw-dport-spec", "52:1", "ERR backwards range '52:1' not allowed, did you mean '1:52'?\\n"],
    ["pve-fw-dport-spec", "http,https", "OK"],
    ["pve-fw-dport-spec", "nosuchservice", "ERR invalid port 'nosuchservice'\\n"],
    ["pve-fw-dport-spec", "echo-request", "OK"],
    ["pve-fw-dport-spec", "echo-request,80", "ERR ICMP ports not allowed in port range\\n"],
    ["pve-fw-dport-spec", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", "ERR too many entries in port list (> 15 numbers)\\n"],
    ["pve-fw-dport-spec", "1:2,3:4,5:6,7:8,9:10,11:12,13:14,15:16", "ERR too many entries in port list (> 15 numbers)\\n"],
    ["pve-fw-sport-spec", "echo-request", "ERR invalid port 'echo-request'\\n"],
    ["pve-fw-protocol-spec", "tcp", "OK"],
    ["pve-fw-protocol-spec", "17", "OK"],
    ["pve-fw-protocol-spec", "icmpv6", "OK"],
    ["pve-fw-protocol-spec", "TCP", "ERR unknown protocol 'TCP'\\n"],
    ["pve-fw-protocol-spec", "256", "ERR unknown protocol '256'\\n"],
    ["pve-fw-icmp-type-spec", "neighbor-solicitation", "OK"],
    ["pve-fw-icmp-type-spec", "8", "ERR invalid icmp-type value '8'\\n"],
    ["pve-iface", "net0", "OK"],
    ["pve-iface", "0net", "ERR invalid network interface name '0net'\\n"],
  ])("%s %j → %s", (format, value, want) => {
    expect(check(format, value)).toBe(want);
  });
});

describe("the firewall rule endpoints' schemas", () => {
  it("take the rules sandboxd writes: out ACCEPT to an address or CIDR, tcp/udp with a port, enabled, marked", () => {
    const rule = { ...CT, type: "out", action: "ACCEPT", dest: "10.1.2.3", proto: "tcp", dport: "5432", enable: "1", comment: "sandboxd-allow", pos: "0" };
    expect(validateParams(POST, rule, { form: true })).toEqual({});
    expect(validateParams(POST, { ...CT, type: "out", action: "ACCEPT", dest: "10.0.0.0/8", enable: "1", comment: "sandboxd-allow" }, { form: true })).toEqual({});
    expect(validateParams(DELETE, { ...CT, pos: "3", digest: "0".repeat(40) }, { form: true })).toEqual({});
  });

  it("refuse a missing type or action, a bad type, a 65-character digest", () => {
    expect(validateParams(POST, { ...CT, type: "out" }, { form: true })).toEqual({ action: "property is missing and it is not optional" });
    expect(validateParams(POST, { ...CT, type: "sideways", action: "ACCEPT" }, { form: true }).type).toMatch(/enumeration 'in, out, forward, group'/);
    expect(validateParams(DELETE, { ...CT, pos: "0", digest: "a".repeat(65) }, { form: true })).toEqual({ digest: "value may only be 64 characters long" });
  });
});

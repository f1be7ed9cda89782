/**
 * The named formats of the firewall rule endpoints (POST …/firewall/rules),
 * ported from pve-firewall 6.0.4 src/PVE/Firewall.pm (pve_fw_verify_*,
 * parse_address_list, parse_port_name_number_or_range) with their exact `die`
 * texts, and the part of Net::IP 1.26 (libnet-ip-perl, what PVE 9 ships) that
 * parse_address_list relies on: Net::IP->new and its error messages.
 * Services and protocols come from /etc/services and /etc/protocols (netbase),
 * as PVE reads them.
 */
import { readFileSync } from "node:fs";

type Die = (msg: string) => never;

// Firewall.pm
const IP_ALIAS = /^(dc\/|guest\/)?[A-Za-z][A-Za-z0-9\-_]+\n?$/;
const MAX_ALIAS_NAME_LENGTH = 64;
const MAX_IPSET_NAME_LENGTH = 64;
// "iptables -p icmp -h" / "ip6tables -p icmpv6 -h"
export const ICMP_TYPE_NAMES = new Set([
  "any", "echo-reply", "destination-unreachable", "network-unreachable", "host-unreachable", "protocol-unreachable",
  "port-unreachable", "fragmentation-needed", "source-route-failed", "network-unknown", "host-unknown", "network-prohibited",
  "host-prohibited", "TOS-network-unreachable", "TOS-host-unreachable", "communication-prohibited", "host-precedence-violation",
  "precedence-cutoff", "source-quench", "redirect", "network-redirect", "host-redirect", "TOS-network-redirect", "TOS-host-redirect",
  "echo-request", "router-advertisement", "router-solicitation", "time-exceeded", "ttl-zero-during-transit",
  "ttl-zero-during-reassembly", "parameter-problem", "ip-header-bad", "required-option-missing", "timestamp-request",
  "timestamp-reply", "address-mask-request", "address-mask-reply",
]);
export const ICMPV6_TYPE_NAMES = new Set([
  "destination-unreachable", "no-route", "communication-prohibited", "beyond-scope", "address-unreachable", "port-unreachable",
  "failed-policy", "reject-route", "packet-too-big", "time-exceeded", "ttl-zero-during-transit", "ttl-zero-during-reassembly",
  "parameter-problem", "bad-header", "unknown-header-type", "unknown-option", "echo-request", "echo-reply", "router-solicitation",
  "router-advertisement", "neighbor-solicitation", "neighbour-solicitation", "neighbor-advertisement", "neighbour-advertisement", "redirect",
]);

const fileLines = (path: string, what: string): string[] => {
  try {
    return readFileSync(path, "utf8").split("\n");
  } catch (err) {
    throw new Error(`the firewall formats need ${path} (netbase) for ${what}: ${(err as Error).message}`);
  }
};
let services: Set<string> | undefined;
/** get_etc_services: the names of /etc/services' tcp/udp/sctp entries. */
function serviceNames(): Set<string> {
  services ??= new Set(fileLines("/etc/services", "port names").filter((l) => !/^#/.test(l) && !/^\s*$/.test(l))
    .map((l) => /^(\S+)\s+(\S+)\/(tcp|udp|sctp).*$/.exec(l)?.[1]).filter((n): n is string => n !== undefined));
  return services;
}
let protocols: Set<string> | undefined;
/** get_etc_protocols: names and numbers from /etc/protocols, plus "icmpv6". */
function protocolKeys(): Set<string> {
  if (!protocols) {
    protocols = new Set(["icmpv6"]);
    for (const l of fileLines("/etc/protocols", "protocol names")) {
      const m = !/^#/.test(l) && !/^\s*$/.test(l) ? /^(\S+)\s+(\d+)(?:\s+.*)?$/.exec(l) : null;
      if (m) protocols.add(m[1]!).add(m[2]!);
    }
  }
  return protocols;
}

/** Perl's split drops trailing empty fields. */
const perlSplit = (s: string, sep: string | RegExp): string[] => {
  const out = s.split(sep);
  while (out.length > 0 && out[out.length - 1] === "") out.pop();
  return out;
};

// Net::IP 1.26: its global $ERROR survives between calls, as in a pveproxy worker.
let ERROR = "";
const fail = (msg: string): undefined => void (ERROR = msg);
const no = (msg: string): false => ((ERROR = msg), false);
const ipLength = (v: 4 | 6) => (v === 4 ? 32 : 128);

function isIpv4(ip: string): boolean {
  if (!/^[\d.]+$/.test(ip)) return no(`Invalid chars in IP ${ip}`);
  if (ip.startsWith(".")) return no(`Invalid IP ${ip} - starts with a dot`);
  if (ip.endsWith(".")) return no(`Invalid IP ${ip} - ends with a dot`);
  if (/^\d+$/.test(ip) && Number(ip) < 256) return true;
  if ((ip.match(/\./g) ?? []).length >= 4) return no(`Invalid IP address ${ip}`);
  if (ip.includes("..")) return no(`Empty quad in IP address ${ip}`);
  for (const q of perlSplit(ip, ".")) if (!(Number(q) >= 0 && Number(q) < 256)) return no(`Invalid quad in IP address ${ip} - ${q}`);
  return true;
}

function isIpv6(ip: string): boolean {
  let n = (ip.match(/:/g) ?? []).length;
  if (!(n > 0 && n < 8)) return false;
  let k = 0;
  for (const part of perlSplit(ip, ":")) {
    k++;
    if (part === "" || /^[a-f\d]{1,4}$/i.test(part)) continue;
    if (k === n + 1 && isIpv4(part)) {
      n++;
      continue;
    }
    return no(`Invalid IP address ${ip}`);
  }
  if (/^:[^:]/.test(ip)) return no(`Invalid address ${ip} (starts with :)`);
  if (/[^:]:$/.test(ip)) return no(`Invalid address ${ip} (ends with :)`);
  if ((ip.match(/:(?=:)/g) ?? []).length > 1) return no(`Invalid address ${ip} (More than one :: pattern)`);
  if (n !== 7 && !ip.includes("::")) return no(`Invalid number of octets ${ip}`);
  return true;
}

const versionOf = (ip: string): 4 | 6 | undefined => (!ip.includes(":") && isIpv4(ip) ? 4 : isIpv6(ip) ? 6 : undefined);

function expand(ip: string, v: 4 | 6): string | undefined {
  if (v === 4) {
    const quads = perlSplit(ip, ".");
    if (quads.length > 4) return fail(`Not a valid IPv address ${ip}`);
    if (quads.some((q) => !/^\d{1,3}$/.test(q))) return fail(`Not a valid IPv4 address ${ip}`);
    return [...quads.map(Number), 0, 0, 0, 0].slice(0, 4).join(".");
  }
  if ((ip.match(/::/g) ?? []).length > 1) return fail("Too many :: in ip");
  const parts = perlSplit(ip.replace(/::/g, ":!:"), ":");
  let num = parts.length;
  for (const [i, p] of parts.entries()) {
    if (p.includes(".")) {
      const v4 = expand(p, 4);
      if (v4 === undefined) return undefined;
      parts[i] = toIp(toBin(v4, 4)!, 6)!.slice(-9);
      num++;
    } else parts[i] = p.padStart(4, "0");
  }
  const gap = parts.indexOf("000!");
  if (gap >= 0) parts[gap] = Array(9 - num).fill("0000").join(":");
  return parts.join(":").toLowerCase();
}

function toBin(ip: string, v: 4 | 6): string | undefined {
  if (v === 4) return ip.split(".").map((q) => (Number(q) & 255).toString(2).padStart(8, "0")).join("");
  const hex = ip.replace(/:/g, "");
  if (hex.length !== 32) return fail(`Bad IP address ${hex}`);
  return [...hex].map((h) => parseInt(h, 16).toString(2).padStart(4, "0")).join("");
}

function toIp(bin: string, v: 4 | 6): string | undefined {
  if (bin.length > ipLength(v)) return fail(`Invalid IP length for binary IP ${bin}\n`);
  const b = bin.padStart(ipLength(v), "0");
  const chunks = (size: number) => b.match(new RegExp(`.{${size}}`, "g"))!;
  return v === 4 ? chunks(8).map((c) => parseInt(c, 2)).join(".") : chunks(16).map((c) => parseInt(c, 2).toString(16).padStart(4, "0")).join(":");
}

function checkPrefix(bin: string, len: number, v: 4 | 6): boolean {
  if (len > bin.length) return no(`Prefix length ${len} is longer than IP address (${bin.length})`);
  const rest = bin.slice(len);
  if (!/^0*$/.test(rest)) return no(`Invalid prefix ${bin}/${len}`);
  if (rest.length + len !== ipLength(v)) return no(`Invalid prefix length /${len}`);
  return true;
}

const binAdd = (a: string, b: string): string => (BigInt(`0b${a}`) + BigInt(`0b${b}`)).toString(2).padStart(a.length, "0").slice(-a.length);

/** ip_normalize: [first, last] of a prefix, range, "ip + n" or single address. */
function normalize(data: string): [string, string | undefined] | undefined {
  let m = /^(\S+?)(\/\S+)$/.exec(data);
  if (m) {
    const v = versionOf(m[1]!);
    const ip = v && expand(m[1]!, v);
    let bin = v && ip && toBin(ip, v);
    if (!v || !ip || !bin) return undefined;
    let len = m[2]!;
    while (len && len !== "0") {
      const step = /^\/(\d+)(,|$)/.exec(len);
      if (!step) break;
      len = len.slice(step[0].length);
      if (!checkPrefix(bin, Number(step[1]), v)) return undefined;
      bin = bin.slice(0, Number(step[1])).padEnd(ipLength(v), "1");
      if (step[2]) bin = binAdd(bin, "1".padStart(ipLength(v), "0"));
    }
    return [ip, toIp(bin, v)];
  }
  m = /^(.+?)\s*-\s*(.+)$/.exec(data);
  if (m) {
    const v = versionOf(m[1]!);
    const ip = v && expand(m[1]!, v);
    const ip2 = v && ip && expand(m[2]!, v);
    return v && ip && ip2 ? [ip, ip2] : undefined;
  }
  m = /^(.+?)\s+\+\s+(.+)$/.exec(data);
  if (m) {
    // "ip + n": the address n further on (Math::BigInt: what is not a number is NaN, which adds 0; too big a number fails)
    const v = versionOf(m[1]!);
    const ip = v && expand(m[1]!, v);
    if (!v || !ip) return undefined;
    const n = /^\d+$/.test(m[2]!) ? BigInt(m[2]!).toString(2) : "0";
    if (n.length > ipLength(v)) return fail("IP addresses of different length\n");
    return [ip, toIp(binAdd(toBin(ip, v)!, n.padStart(ipLength(v), "0")), v)];
  }
  const v = versionOf(data);
  const ip = v && expand(data, v);
  return v && ip ? [ip, undefined] : undefined;
}

/** Net::IP->new($data): its first address (ip()), or the error text (Net::IP::Error()) when it fails. */
export function netIp(data: string): { ip: string } | { error: string } {
  const failed = () => ({ error: ERROR });
  const range = normalize(data);
  if (!range) return failed();
  const [begin, last] = range;
  const v = versionOf(begin);
  const bin = v && toBin(begin, v);
  if (!v || !bin) return failed();
  const end = last || begin;
  const ve = versionOf(end);
  if (!ve) return failed();
  if (ve !== v) return { error: (ERROR = `Begin and End addresses have different IP versions - ${begin} - ${end}`) };
  const endBin = toBin(end, v);
  if (!endBin) return failed();
  if (BigInt(`0b${bin}`) > BigInt(`0b${endBin}`)) return { error: (ERROR = `Begin address is greater than End address ${begin} - ${end}`) };
  return { ip: begin };
}

/** parse_address_list: an ipset (+name), an alias, or a list of addresses/CIDRs, or one range; returns the IP version of a list. */
export function parseAddressList(str: string, die: Die): 4 | 6 | undefined {
  if (/^(\+)(\S+)\n?$/.test(str)) {
    if (str.length > MAX_IPSET_NAME_LENGTH + 1) die("ipset name too long");
    return undefined;
  }
  if (IP_ALIAS.test(str)) {
    if (str.length > MAX_ALIAS_NAME_LENGTH) die("alias name too long");
    return undefined;
  }
  const elements = perlSplit(str, ",");
  if (str !== elements.join(",")) die("extraneous commas in list");
  let version: boolean | undefined;
  let range = false;
  for (const elem of elements) {
    const ip = netIp(elem);
    if ("error" in ip) return die(`invalid IP address: ${ip.error}`);
    if (elem.includes("-")) range = true;
    const v6 = isIpv6(ip.ip);
    if (version !== undefined && v6 !== version) die(`detected mixed ipv4/ipv6 addresses in address list '${str}'`);
    version = v6;
  }
  if (range && elements.length > 1) die("you can't use a range in a list");
  return version === undefined ? undefined : version ? 6 : 4;
}

/** parse_port_name_number_or_range; `dport` also takes ICMP type names. */
export function parsePorts(str: string, dport: boolean, die: Die): void {
  let count = 0;
  let icmpPort = false;
  const elements = perlSplit(str, ",");
  if (str !== elements.join(",")) die("extraneous commas in list");
  for (const item of elements) {
    let m: RegExpExecArray | null;
    if ((m = /^([0-9]+):([0-9]+)$/.exec(item))) {
      count += 2;
      const [a, b] = [Number(m[1]), Number(m[2])];
      if (a > 65535) die(`invalid port '${m[1]}'`);
      if (b > 65535) die(`invalid port '${m[2]}'`);
      if (a > b) die(`backwards range '${m[1]}:${m[2]}' not allowed, did you mean '${m[2]}:${m[1]}'?`);
    } else if ((m = /^([0-9]+)$/.exec(item))) {
      count += 1;
      if (Number(m[1]) > 65535) die(`invalid port '${m[1]}'`);
    } else if (dport && (ICMP_TYPE_NAMES.has(item) || ICMPV6_TYPE_NAMES.has(item))) {
      icmpPort = true;
    } else if (!serviceNames().has(item)) die(`invalid port '${item}'`);
  }
  if (icmpPort && count > 0) die("ICMP ports not allowed in port range");
  if (count > 15) die("too many entries in port list (> 15 numbers)");
}

/** The verifiers, by registered name, each with the `die` of formats.ts. */
export function firewallFormats(die: Die): Record<string, (v: string) => void> {
  return {
    "pve-fw-addr-spec": (v) => parseAddressList(v, die),
    "pve-fw-dport-spec": (v) => parsePorts(v, true, die),
    "pve-fw-sport-spec": (v) => parsePorts(v, false, die),
    "pve-fw-protocol-spec": (v) => void (v && v !== "0" && !protocolKeys().has(v) && die(`unknown protocol '${v}'`)),
    "pve-fw-icmp-type-spec": (v) => {
      if (ICMP_TYPE_NAMES.has(v) || ICMPV6_TYPE_NAMES.has(v)) return;
      if (v !== "") die(`invalid icmp-type value '${v}'`);
    },
  };
}

/**
 * PVE's named string formats used by the PVE_ENDPOINTS parameters, each a port of the Perl
 * verifier registered with PVE::JSONSchema::register_format, with its exact `die` text.
 * Sources (versions matching PVE 9.1.3, April 2026):
 *   pve-common 9.1.11        src/PVE/JSONSchema.pm, src/PVE/Tools.pm ($IPV4RE, $IPV6RE, split_list)
 *   pve-container 6.1.5      src/PVE/LXC/Config.pm
 *   pve-storage 9.1.2        src/PVE/Storage/Plugin.pm, src/PVE/Storage/DirPlugin.pm
 *   pve-access-control 9.0.7 src/PVE/AccessControl.pm
 *   pve-firewall 6.0.4       src/PVE/Firewall.pm (fw-formats.ts)
 * Perl's `$` also matches before one final "\n", so every anchored regex here ends in `\n?$`.
 */
import { readFileSync } from "node:fs";
import { firewallFormats } from "./fw-formats.js";

/** A Perl `die "...\n"` from a verifier; JSONSchema.pm reports it as "invalid format - <msg>". */
export class Die {
  constructor(readonly msg: string) {}
}
export const die = (msg: string): never => {
  throw new Die(`${msg}\n`);
};

// PVE::Tools
const IPV4OCTET = "(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])";
const IPV4RE = `(?:(?:${IPV4OCTET}\\.){3}${IPV4OCTET})`;
const H16 = "(?:[0-9a-fA-F]{1,4})";
const LS32 = `(?:(?:${IPV4RE}|${H16}:${H16}))`;
const IPV6RE =
  "(?:" +
  `(?:(?:(?:${H16}:){6})${LS32})|` +
  `(?:(?:::(?:${H16}:){5})${LS32})|` +
  `(?:(?:(?:${H16})?::(?:${H16}:){4})${LS32})|` +
  `(?:(?:(?:(?:${H16}:){0,1}${H16})?::(?:${H16}:){3})${LS32})|` +
  `(?:(?:(?:(?:${H16}:){0,2}${H16})?::(?:${H16}:){2})${LS32})|` +
  `(?:(?:(?:(?:${H16}:){0,3}${H16})?::(?:${H16}:){1})${LS32})|` +
  `(?:(?:(?:(?:${H16}:){0,4}${H16})?::)${LS32})|` +
  `(?:(?:(?:(?:${H16}:){0,5}${H16})?::)${H16})|` +
  `(?:(?:(?:(?:${H16}:){0,6}${H16})?::)))`;
const anchored = (re: string, flags = ""): RegExp => new RegExp(`^(?:${re})\\n?$`, flags);
const IPV4_ONLY = anchored(IPV4RE);
const IPV6_ONLY = anchored(IPV6RE);
const IP = anchored(`(?:${IPV4RE})|(?:${IPV6RE})`);
const CIDR4 = new RegExp(`^(?:${IPV4RE})(?:/(\\d+))\\n?$`);
const CIDR6 = new RegExp(`^(?:${IPV6RE})(?:/(\\d+))\\n?$`);
const NAME_RE = "([a-zA-Z0-9]([a-zA-Z0-9\\-]*[a-zA-Z0-9])?)";
const DNS_NAME = new RegExp(`^(${NAME_RE}\\.)*${NAME_RE}\\n?$`);

/** PVE::Tools::split_list: NUL-separated if it has a NUL, else on `,` `;` and whitespace. */
export function splitList(text: string): string[] {
  if (text.includes("\0")) return perlSplit(text.split("\0"));
  return perlSplit(text.replace(/[,;]/g, " ").replace(/^\s+/, "").split(/\s+/));
}
/** Perl's split drops trailing empty fields. */
function perlSplit(fields: string[]): string[] {
  while (fields.length > 0 && fields[fields.length - 1] === "") fields.pop();
  return fields;
}
/** Perl truthiness of a string: "" and "0" are false. */
export const perlTrue = (s: string | undefined): boolean => s !== undefined && s !== "" && s !== "0";

const isCidr = (re: RegExp, v: string, max: number): boolean => {
  const m = re.exec(v);
  return !!m && Number(m[1]) > 7 && Number(m[1]) <= max;
};
const isIface = (v: string): boolean => /^[a-z][a-z0-9_]{1,20}([:.]\d+)?\n?$/i.test(v);
const verifyIp = (v: string): void => void (IP.test(v) || die("value does not look like a valid IP address"));

/** PVE::JSONSchema::parse_id (pve-storage-id). */
function parseId(id: string, type: string): void {
  if ([...id].length < 2) die(`${type} ID '${id}' cannot be shorter than 2 characters`);
  if (!/^[a-z][a-z0-9\-_.]*[a-z0-9]\n?$/i.test(id)) die(`${type} ID '${id}' contains illegal characters`);
}

/** PVE::JSONSchema::pve_parse_startup_order. */
function startupOrderOk(value: string): boolean {
  if (!perlTrue(value)) return false;
  for (const p of value.split(",")) {
    if (/^\s*$/.test(p)) continue;
    if (!/^(order=)?(\d+)\n?$/.test(p) && !/^up=(\d+)\n?$/.test(p) && !/^down=(\d+)\n?$/.test(p)) return false;
  }
  return true;
}

let zoneTab: Set<string> | undefined;
/** PVE::JSONSchema::pve_verify_timezone reads the zone names from tzdata's zone.tab, as we do. */
function verifyTimezone(tz: string): void {
  if (tz === "UTC") return;
  if (!zoneTab) {
    let text: string;
    try {
      text = readFileSync("/usr/share/zoneinfo/zone.tab", "utf8");
    } catch (err) {
      throw new Error(`format pve-ct-timezone needs /usr/share/zoneinfo/zone.tab (tzdata): ${(err as Error).message}`);
    }
    zoneTab = new Set(
      text.split("\n").filter((l) => !/^\s*#/.test(l)).map((l) => l.split("\t")[2] ?? "").filter(Boolean),
    );
  }
  if (!zoneTab.has(tz)) die(`invalid time zone '${tz}'`);
}

/** pve-storage: valid_content_types('dir') (DirPlugin covers all types), plus 'import'. */
const CONTENT_TYPES = new Set(["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "none", "import"]);

/** Verifiers by registered name; a `-list` / `-opt` suffix is handled by the caller. */
export const NAMED_FORMATS: Record<string, (v: string) => void> = {
  "pve-node": (v) => void (/^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)\n?$/.test(v) || die("value does not look like a valid node name")),
  "pve-vmid": (v) => void (/^[1-9][0-9]{2,8}\n?$/.test(v) || die("value does not look like a valid VM ID")),
  "dns-name": (v) => void (DNS_NAME.test(v) || die("value does not look like a valid DNS name")),
  "pve-configid": (v) => void (/^[a-z][a-z0-9_-]+\n?$/i.test(v) || die(`invalid configuration ID '${v}'`)),
  "pve-storage-id": (v) => parseId(v, "storage"),
  "pve-tag": (v) => void (/^[a-z0-9_][a-z0-9_\-+.]*\n?$/i.test(v) || die("invalid characters in tag")),
  "pve-iface": (v) => void (isIface(v) || die(`invalid network interface name '${v}'`)),
  ipv4: (v) => void (IPV4_ONLY.test(v) || die("value does not look like a valid IPv4 address")),
  ipv6: (v) => void (IPV6_ONLY.test(v) || die("value does not look like a valid IPv6 address")),
  "mac-addr": (v) =>
    void (/^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}\n?$/i.test(v) || die("value does not look like a valid unicast MAC address")),
  "pve-ipv4-config": (v) =>
    void (/^(?:dhcp|manual)\n?$/.test(v) || isCidr(CIDR4, v, 32) || die("value does not look like a valid ipv4 network configuration")),
  "pve-ipv6-config": (v) =>
    void (/^(?:auto|dhcp|manual)\n?$/.test(v) || isCidr(CIDR6, v, 128) || die("value does not look like a valid ipv6 network configuration")),
  "disk-size": (v) =>
    void (/^(\d+(\.\d+)?)([KMGT](?:iB)?)?\n?$/.test(v) || die(`value does not look like a valid disk size: ${v}`)),
  "pve-startup-order": (v) => void (startupOrderOk(v) || die("unable to parse startup options")),
  // pve-access-control: verify_poolname; `split("/", $name) > 3` counts Perl split fields.
  "pve-poolid": (v) => {
    if (perlSplit(v === "" ? [] : v.split("/")).length > 3) die(`pool name '${v}' nested too deeply (max levels = 3)`);
    if (!/^[A-Za-z0-9.\-_]+(?:\/[A-Za-z0-9.\-_]+){0,2}\n?$/.test(v)) die(`pool name '${v}' contains invalid characters`);
  },
  // pve-storage
  "pve-storage-content": (v) => void (CONTENT_TYPES.has(v) || die(`invalid content type '${v}'`)),
  "pve-volume-id": (v) => void (/^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)\n?$/i.test(v) || die(`unable to parse volume ID '${v}'`)),
  // pve-container
  "pve-lxc-mp-string": (v) =>
    void ((/\/\.\.?\//.test(v) || /\/\.\.?\n?$/.test(v) || /^\.\.\//.test(v)) && die(`${v} contains illegal character sequences`)),
  "pve-lxc-dev-string": (v) =>
    void ((/\/\.\.?(?:\/|\n?$)/.test(v) || !/^\/dev\//.test(v)) && die(`${v} is not a valid device path`)),
  "pve-ct-timezone": (v) => (v === "host" ? undefined : verifyTimezone(v)),
  // verify_ip_with_ll_iface: a link-local address may carry "%iface"; otherwise pve_verify_ip.
  "lxc-ip-with-ll-iface": (v) => {
    const m = /^(fe80:[^%]+)%(.*)\n?$/.exec(v);
    if (m && IP.test(m[1]!) && isIface(m[2]!)) return;
    verifyIp(v);
  },
  // pve-firewall
  ...firewallFormats(die),
};

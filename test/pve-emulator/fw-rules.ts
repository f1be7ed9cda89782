/**
 * A container's firewall rules (/etc/pve/firewall/<vmid>.fw [RULES]) as
 * pve-firewall 6.0.4 keeps them (src/PVE/Firewall.pm, API2/Firewall/Rules.pm):
 * the list with positions and the digest, what a POST may carry
 * (copy_rule_data + verify_rule for rule_env "ct"), and the rules' effect on
 * the CT's real sandbox.
 */
import { createHash } from "node:crypto";
import { NON_PUBLIC, cidrRange, formatEgressEntry, parseCidr } from "../../server/providers/egress.js";
import { EGRESS_GROUP } from "../../server/providers/proxmox/firewall.js";
import { ICMP_TYPE_NAMES, ICMPV6_TYPE_NAMES, parseAddressList, parsePorts } from "../pve-schema/fw-formats.js";
import { ApiError, paramError } from "./http.js";
import type { Values } from "./schema.js";

/** One rule as stored (what the .fw line holds once parsed again: enable 0/1, ipversion when the addresses tell). */
export interface FwRule {
  type: string;
  action: string;
  enable: number;
  macro?: string;
  iface?: string;
  source?: string;
  dest?: string;
  proto?: string;
  dport?: string;
  sport?: string;
  log?: string;
  "icmp-type"?: string;
  comment?: string;
  ipversion?: number;
}

/** The rule fields a POST copies (Firewall.pm $rule_properties less pos and digest, which the .fw file does not keep). */
const FIELDS = ["type", "action", "macro", "iface", "source", "dest", "proto", "dport", "sport", "log", "icmp-type", "enable", "comment"] as const;
const PROTOCOLS_WITH_PORTS = new Set(["udp", "17", "udplite", "136", "tcp", "6", "dccp", "33", "sctp", "132"]);
const isIcmp = (proto?: string) => proto === "icmp" || proto === "icmpv6" || proto === "ipv6-icmp";

/** The template's rules: the egress group first (docs/proxmox.md §4), then sshd for sandboxd (§7). */
export function templateRules(egressGroup: boolean): FwRule[] {
  return [
    ...(egressGroup ? [{ type: "group", action: EGRESS_GROUP, enable: 1 }] : []),
    { type: "in", action: "ACCEPT", proto: "tcp", dport: "22", enable: 1 },
  ];
}

/** copy_list_with_digest: SHA-1 over every rule's defined keys, sorted, as "key:value\n". */
export function rulesDigest(rules: readonly FwRule[]): string {
  const sha = createHash("sha1");
  for (const r of rules) {
    for (const k of Object.keys(r).sort()) {
      const v = r[k as keyof FwRule];
      if (v !== undefined) sha.update(`${k}:${v}\n`);
    }
  }
  return sha.digest("hex");
}

/** GET …/firewall/rules: each rule with its position and the list's digest. */
export function listRules(rules: readonly FwRule[]): Array<FwRule & { pos: number; digest: string }> {
  const digest = rulesDigest(rules);
  return rules.map((r, pos) => ({ ...r, pos, digest }));
}

/** PVE::Tools::assert_if_modified. */
export function assertUnmodified(rules: readonly FwRule[], digest: unknown): void {
  if (digest && digest !== rulesDigest(rules)) throw new ApiError(500, "detected modified configuration - file changed by other user? Try again.");
}

/**
 * The rule a POST makes (create_rule): the parameters copied ("" and "-"
 * drop a field), checked as verify_rule does for a container, which raises
 * its first error as a 400 on that parameter. enable defaults to 0: a rule
 * created without `enable=1` is there but off.
 */
export function ruleFromParams(p: Values): FwRule {
  const rule: Record<string, string | number> = {};
  for (const k of FIELDS) {
    const v = p[k];
    if (v !== undefined && v !== "" && v !== "-") rule[k] = v;
  }
  const r = rule as unknown as FwRule;
  verifyRule(r);
  r.enable = p.enable === undefined || Number(p.enable) === 0 ? 0 : 1;
  if (r.comment !== undefined) r.comment = String(r.comment).trim() || undefined;
  if (r.comment === undefined) delete r.comment;
  return r;
}

function verifyRule(r: FwRule): void {
  const fail = (param: string, msg: string): never => {
    throw paramError({ [param]: msg });
  };
  const check = (param: string, f: () => void) => {
    try {
      f();
    } catch (e) {
      if (e instanceof Error && e.message.startsWith("die:")) fail(param, e.message.slice(4).replace(/\n$/, ""));
      throw e;
    }
  };
  const die = (msg: string): never => {
    throw new Error(`die:${msg}`);
  };
  let ipversion: number | undefined;
  const setVersion = (v: number | undefined) => {
    if (!v) return;
    if (ipversion && v !== ipversion) die("detected mixed ipv4/ipv6 addresses in rule");
    ipversion = v;
  };
  if (!["in", "out", "group"].includes(r.type)) fail("type", `invalid rule type '${r.type}' for rule_env 'ct'`);
  if (r.type !== "group" && !/^(ACCEPT|DROP|REJECT)$/.test(r.action)) fail("action", `unknown action '${r.action}'`);
  if (r.iface && !/^net(\d+)$/.test(r.iface)) fail("iface", "value does not match the regex pattern 'net\\d+'");
  // The macro table (Firewall.pm $pve_fw_macros) is not emulated.
  if (r.macro) throw new ApiError(501, `firewall macros are not emulated (macro '${r.macro}')`);
  if (r.proto) {
    if (r.proto === "icmp") setVersion(4);
    if (r.proto === "icmpv6" || r.proto === "ipv6-icmp") setVersion(6);
  }
  if (r.dport) {
    check("dport", () => parsePorts(r.dport!, isIcmp(r.proto), die));
    if (!r.proto) fail("proto", "missing property - 'dport' requires this property");
    if (!PROTOCOLS_WITH_PORTS.has(r.proto!) && !isIcmp(r.proto)) fail("dport", `protocol '${r.proto}' does not support ports`);
  }
  const icmpType = r["icmp-type"];
  if (icmpType) {
    if (!isIcmp(r.proto)) fail("proto", "missing property - 'icmp-type' requires this property");
    if (r.dport) fail("icmp-type", "'icmp-type' cannot be specified together with 'dport'");
    const names = r.proto === "icmp" ? ICMP_TYPE_NAMES : ICMPV6_TYPE_NAMES;
    if (!names.has(icmpType)) fail("icmp-type", `invalid icmp-type '${icmpType}' for proto '${r.proto}'`);
  }
  if (r.sport) {
    check("sport", () => parsePorts(r.sport!, false, die));
    if (!r.proto) fail("proto", "missing property - 'sport' requires this property");
    if (!PROTOCOLS_WITH_PORTS.has(r.proto!)) fail("sport", `protocol '${r.proto}' does not support ports`);
  }
  for (const name of ["source", "dest"] as const) {
    const value = r[name];
    if (!value) continue;
    check(name, () => setVersion(parseAddressList(value, die)));
    // The emulator has no IPSets or aliases, so a reference to one names nothing.
    const set = /^\+(guest\/|dc\/|sdn\/)?([A-Za-z][A-Za-z0-9\-_]+)$/.exec(value);
    if (value.startsWith("+")) fail(name, set ? `no such ipset '${set[2]}'` : `invalid ipset name '${value}'`);
    if (/^(guest\/|dc\/)?[A-Za-z][A-Za-z0-9\-_]+$/.test(value)) fail(name, `no such alias '${value}'`);
  }
  if (ipversion) r.ipversion = ipversion;
}

const overlaps = (a: string, b: string) => {
  const [x0, x1] = cidrRange(a);
  const [y0, y1] = cidrRange(b);
  return x0 <= y1 && y0 <= x1;
};

/**
 * The egress allowlist the rules give the CT's sandbox (LocalRuntime entries
 * "cidr" or "cidr:port"). In pve-firewall a CT's OUT chain runs its rules in
 * order and an ACCEPT is final (a goto to PVEFW-SET-ACCEPT-MARK), so an
 * enabled `OUT ACCEPT -dest X [-p tcp|udp -dport N]` placed before
 * `GROUP sandboxd-egress` lets X out before the group's REJECT to the
 * private ranges is reached, whatever policy_out (the internet toggle) says.
 * After the group only public destinations still get through an ACCEPT. The
 * first enabled group stands for sandboxd-egress: its REJECTs are the
 * LocalRuntime's own refusal of non-public ranges, which also holds when a
 * template has no group (not faithful: real PVE would then let private
 * ranges out with policy_out ACCEPT). Not modelled either: rules with a
 * source, sport, interface, macro, list, range, IPSet or alias; an earlier
 * DROP/REJECT shadowing an ACCEPT; a port rule for one protocol only (the
 * runtime opens a port for TCP and UDP together).
 */
export function allowEntries(rules: readonly FwRule[]): string[] {
  const out: string[] = [];
  let pastGroup = false;
  for (const r of rules) {
    if (!r.enable) continue;
    if (r.type === "group") pastGroup = true;
    if (r.type !== "out" || r.action !== "ACCEPT" || !r.dest || r.source || r.sport || r.iface || r.macro) continue;
    let cidr: string;
    try {
      cidr = parseCidr(r.dest);
    } catch {
      continue;
    }
    if (pastGroup && NON_PUBLIC.some((n) => overlaps(cidr, n))) continue;
    let entry: string;
    if (!r.proto && !r.dport) entry = formatEgressEntry({ cidr });
    else if (["tcp", "udp", "6", "17"].includes(r.proto ?? "") && /^\d+$/.test(r.dport ?? "") && Number(r.dport) > 0) entry = formatEgressEntry({ cidr, port: Number(r.dport) });
    else continue;
    if (!out.includes(entry)) out.push(entry);
  }
  return out;
}

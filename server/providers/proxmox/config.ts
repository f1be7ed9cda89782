/**
 * The Proxmox provider's settings: read from the config file and SANDBOXD_*
 * environment (server/config/config.ts hands over a getter), validated with
 * messages naming the setting at fault.
 */
import { readFileSync } from "node:fs";

export interface ProxmoxConfig {
  url: string;
  tokenId: string;
  secret: string;
  nodes: string[];
  /** The template, or the first of the per-node templates. */
  templateId: number;
  /**
   * Per-node templates (node → vmid) for templates on local storage, which
   * Proxmox cannot clone to another node. Empty with a single template id.
   */
  templates: Record<string, number>;
  pool: string;
  bridge?: string;
  caFile?: string;
  fingerprint?: string;
  insecure: boolean;
  /**
   * A host key every clone shares (OpenSSH line), the old way. Unset: the
   * template has no host keys, each clone makes its own, learnt at create and pinned.
   */
  hostKey?: string;
  sshKeyPath: string;
  sshUser: string;
  tag: string;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** Overall deadline of one create. */
  createTimeoutMs: number;
  /** At start, a datacenter firewall that is off (egress rules then mean nothing): refuse to start, or only warn. */
  datacenterFirewall: "require" | "warn";
  /**
   * Template checks waived (labs only): privileged, features, swap, inbound,
   * egress (the firewall's first rule is not the enabled GROUP sandboxd-egress:
   * sandboxes with internet on reach private networks; started with a warning).
   */
  allowUnsafeTemplate: UnsafeTemplateSetting[];
}

export const UNSAFE_TEMPLATE_SETTINGS = ["privileged", "features", "swap", "inbound", "egress"] as const;
export type UnsafeTemplateSetting = (typeof UNSAFE_TEMPLATE_SETTINGS)[number];

/** Setting name in the file → its environment variable(s), first wins. */
export const PROXMOX_SETTINGS = {
  proxmoxUrl: ["SANDBOXD_PROXMOX_URL"],
  proxmoxTokenId: ["SANDBOXD_PROXMOX_TOKEN_ID"],
  proxmoxSecret: ["SANDBOXD_PROXMOX_SECRET", "SANDBOX_PROXMOX_SECRET"],
  proxmoxNodes: ["SANDBOXD_PROXMOX_NODES"],
  proxmoxTemplateId: ["SANDBOXD_PROXMOX_TEMPLATE_ID"],
  proxmoxPool: ["SANDBOXD_PROXMOX_POOL"],
  proxmoxBridge: ["SANDBOXD_PROXMOX_BRIDGE"],
  proxmoxCaFile: ["SANDBOXD_PROXMOX_CA_FILE"],
  proxmoxFingerprint: ["SANDBOXD_PROXMOX_FINGERPRINT"],
  proxmoxInsecure: ["SANDBOXD_PROXMOX_INSECURE"],
  proxmoxHostKey: ["SANDBOXD_PROXMOX_HOST_KEY"],
  proxmoxTag: ["SANDBOXD_PROXMOX_TAG"],
  proxmoxConnectTimeout: ["SANDBOXD_PROXMOX_CONNECT_TIMEOUT"],
  proxmoxRequestTimeout: ["SANDBOXD_PROXMOX_REQUEST_TIMEOUT"],
  proxmoxCreateTimeout: ["SANDBOXD_PROXMOX_CREATE_TIMEOUT"],
  proxmoxDatacenterFirewall: ["SANDBOXD_PROXMOX_DATACENTER_FIREWALL"],
  proxmoxAllowUnsafeTemplate: ["SANDBOXD_PROXMOX_ALLOW_UNSAFE_TEMPLATE"],
  sshKeyPath: ["SANDBOXD_SSH_KEY_PATH", "SANDBOX_SSH_KEY_PATH"],
  sshUser: ["SANDBOXD_SSH_USER"],
} as const;
export type ProxmoxSetting = keyof typeof PROXMOX_SETTINGS;

export type Getter = (s: ProxmoxSetting) => { value: string | undefined; name: string };

export class ProxmoxConfigError extends Error {
  override readonly name = "ProxmoxConfigError";
}

const KEY_LINE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|ssh-dss) [A-Za-z0-9+/=]+( .*)?$/;

export function parseProxmoxConfig(get: Getter, parseDuration: (s: string) => number | undefined, readFile = (p: string) => readFileSync(p, "utf8")): ProxmoxConfig {
  const fail = (name: string, msg: string): never => {
    throw new ProxmoxConfigError(`${name}: ${msg}`);
  };
  const required = (s: ProxmoxSetting): string => {
    const { value, name } = get(s);
    if (value === undefined || value.trim() === "") fail(name, "required when SANDBOXD_PROVIDER=proxmox");
    return value!.trim();
  };
  const duration = (s: ProxmoxSetting, dflt: number): number => {
    const { value, name } = get(s);
    if (value === undefined) return dflt;
    const ms = parseDuration(value);
    if (ms === undefined || ms <= 0) fail(name, `expected a positive duration like 500ms, 10s, 5m, got '${value}'`);
    return ms!;
  };

  const urlRaw = required("proxmoxUrl");
  let url: URL;
  try {
    url = new URL(urlRaw);
  } catch {
    return fail(get("proxmoxUrl").name, `expected an https:// URL, got '${urlRaw}'`);
  }
  if (url.protocol !== "https:") fail(get("proxmoxUrl").name, `expected an https:// URL, got '${urlRaw}'`);

  const tokenId = required("proxmoxTokenId");
  if (!/^[^@\s!]+@[^@\s!]+![A-Za-z][A-Za-z0-9._-]*$/.test(tokenId)) fail(get("proxmoxTokenId").name, `expected user@realm!tokenname, got '${tokenId}'`);
  const secret = required("proxmoxSecret");

  const nodes = required("proxmoxNodes").split(",").map((n) => n.trim()).filter(Boolean);
  for (const n of nodes) if (!/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(n)) fail(get("proxmoxNodes").name, `'${n}' is not a node name`);
  if (nodes.length === 0) fail(get("proxmoxNodes").name, "name at least one node");

  const { templateId, templates } = parseTemplates(required("proxmoxTemplateId"), nodes, (msg) => fail(get("proxmoxTemplateId").name, msg));
  const pool = required("proxmoxPool");

  const insecureRaw = get("proxmoxInsecure");
  const insecure = insecureRaw.value !== undefined && /^(1|true|yes)$/i.test(insecureRaw.value);
  if (insecureRaw.value !== undefined && !/^(1|true|yes|0|false|no)$/i.test(insecureRaw.value)) fail(insecureRaw.name, `expected true or false, got '${insecureRaw.value}'`);
  const caFile = get("proxmoxCaFile").value;
  const fp = get("proxmoxFingerprint");
  if (fp.value !== undefined && fp.value.replace(/:/g, "").length !== 64) fail(fp.name, "expected a SHA-256 fingerprint (64 hex digits, colons allowed)");
  if (caFile !== undefined) {
    try {
      readFile(caFile);
    } catch (e) {
      fail(get("proxmoxCaFile").name, `cannot read ${caFile}: ${(e as Error).message}`);
    }
  }

  // Unset (recommended): each clone's own key, learnt at create and pinned. Set: one key shared by every clone.
  const hk = get("proxmoxHostKey");
  let hostKey = hk.value?.trim();
  if (hostKey !== undefined && !KEY_LINE.test(hostKey)) {
    try {
      hostKey = readFile(hostKey).trim().split("\n")[0]!.trim();
    } catch (e) {
      fail(hk.name, `neither an OpenSSH public key line nor a readable file: ${(e as Error).message}`);
    }
    if (!KEY_LINE.test(hostKey!)) fail(hk.name, "the file does not hold an OpenSSH public key line");
  }
  hostKey = hostKey?.split(" ").slice(0, 2).join(" ");

  const sshKeyPath = required("sshKeyPath");
  try {
    readFile(sshKeyPath);
  } catch (e) {
    fail(get("sshKeyPath").name, `cannot read ${sshKeyPath}: ${(e as Error).message}`);
  }
  const tag = get("proxmoxTag").value ?? "sandboxd";
  if (!/^[a-z0-9_][a-z0-9_\-+.]*$/.test(tag)) fail(get("proxmoxTag").name, `'${tag}' is not a valid Proxmox tag (lowercase)`);

  const fw = get("proxmoxDatacenterFirewall");
  if (fw.value !== undefined && !["require", "warn"].includes(fw.value)) fail(fw.name, `expected 'require' or 'warn', got '${fw.value}'`);
  const unsafe = get("proxmoxAllowUnsafeTemplate");
  const allowUnsafeTemplate = (unsafe.value ?? "").split(",").map((x) => x.trim()).filter(Boolean);
  for (const x of allowUnsafeTemplate) {
    if (!(UNSAFE_TEMPLATE_SETTINGS as readonly string[]).includes(x)) fail(unsafe.name, `'${x}' is not one of ${UNSAFE_TEMPLATE_SETTINGS.join(", ")}`);
  }

  return {
    url: url.origin, tokenId, secret, nodes, templateId, templates, pool, bridge: get("proxmoxBridge").value,
    caFile, fingerprint: fp.value, insecure, hostKey, sshKeyPath, sshUser: get("sshUser").value ?? "sandbox", tag,
    connectTimeoutMs: duration("proxmoxConnectTimeout", 10_000),
    requestTimeoutMs: duration("proxmoxRequestTimeout", 60_000),
    createTimeoutMs: duration("proxmoxCreateTimeout", 300_000),
    datacenterFirewall: (fw.value ?? "require") as "require" | "warn",
    allowUnsafeTemplate: allowUnsafeTemplate as UnsafeTemplateSetting[],
  };
}

/** "9000" (one template) or "pve1=9000,pve2=9001" (a template per node, for local storage). */
function parseTemplates(raw: string, nodes: string[], fail: (msg: string) => never): { templateId: number; templates: Record<string, number> } {
  const vmid = (s: string) => {
    if (!/^\d+$/.test(s) || Number(s) < 100) fail(`expected a vmid ≥ 100 or node=vmid pairs, got '${raw}'`);
    return Number(s);
  };
  if (!raw.includes("=")) return { templateId: vmid(raw), templates: {} };
  const templates: Record<string, number> = {};
  for (const pair of raw.split(",").map((x) => x.trim()).filter(Boolean)) {
    const [node, id] = pair.split("=").map((x) => x.trim());
    if (!node || id === undefined || !nodes.includes(node)) fail(`'${pair}': expected node=vmid with a node of SANDBOXD_PROXMOX_NODES`);
    if (templates[node!] !== undefined) fail(`node ${node} is named twice`);
    templates[node!] = vmid(id!);
  }
  return { templateId: Object.values(templates)[0]!, templates };
}

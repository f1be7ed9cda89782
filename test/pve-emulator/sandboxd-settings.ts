/** How a sandboxd reaches an emulator: as a ProxmoxProvider config (in process) or as SANDBOXD_* variables (a child process). */
import type { ProxmoxConfig } from "../../server/providers/proxmox/index.js";
import type { Connection } from "./index.js";

export function proxmoxConfigOf(c: Connection, over: Partial<ProxmoxConfig> = {}): ProxmoxConfig {
  return {
    url: c.url, tokenId: c.tokenId, secret: c.secret, nodes: c.nodes, templateId: c.templateId, templates: c.templates, pool: c.pool, bridge: c.bridge,
    caFile: c.caFile, insecure: false, hostKey: c.hostKey, sshKeyPath: c.sshKeyPath, sshUser: c.sshUser, tag: "sandboxd",
    connectTimeoutMs: 5000, requestTimeoutMs: 15_000, createTimeoutMs: 90_000, datacenterFirewall: "require", allowUnsafeTemplate: [], ...over,
  };
}

/** The names are those of server/providers/proxmox/config.ts. */
export function proxmoxEnvOf(c: Connection): Record<string, string> {
  return {
    SANDBOXD_PROVIDER: "proxmox",
    SANDBOXD_PROXMOX_URL: c.url,
    SANDBOXD_PROXMOX_TOKEN_ID: c.tokenId,
    SANDBOXD_PROXMOX_SECRET: c.secret,
    SANDBOXD_PROXMOX_NODES: c.nodes.join(","),
    SANDBOXD_PROXMOX_TEMPLATE_ID: Object.keys(c.templates).length ? Object.entries(c.templates).map(([n, v]) => `${n}=${v}`).join(",") : String(c.templateId),
    SANDBOXD_PROXMOX_POOL: c.pool,
    SANDBOXD_PROXMOX_BRIDGE: c.bridge,
    SANDBOXD_PROXMOX_CA_FILE: c.caFile,
    ...(c.hostKey ? { SANDBOXD_PROXMOX_HOST_KEY: c.hostKey } : {}),
    SANDBOXD_SSH_KEY_PATH: c.sshKeyPath,
    SANDBOXD_SSH_USER: c.sshUser,
  };
}

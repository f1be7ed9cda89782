import { describe, expect, it } from "vitest";
import { loadConfig } from "../../config/config.js";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBbPQJ6e8H0nQ2s0I1xYt0Hn0f6qCyS5m7l5Y9v0JcZk";
const files: Record<string, string> = { "/k": "PRIVATE", "/ca.pem": "PEM", "/hostkey.pub": `${KEY} root@tpl\n` };
const read = (p: string) => {
  if (p in files) return files[p]!;
  throw new Error(`ENOENT ${p}`);
};
const base = {
  SANDBOXD_PROVIDER: "proxmox", SANDBOXD_PROXMOX_URL: "https://pve.example:8006", SANDBOXD_PROXMOX_TOKEN_ID: "sandbox@pve!sandboxd",
  SANDBOXD_PROXMOX_SECRET: "s3cr3t", SANDBOXD_PROXMOX_NODES: "pve1, pve2", SANDBOXD_PROXMOX_TEMPLATE_ID: "9000",
  SANDBOXD_PROXMOX_POOL: "sandbox-pool", SANDBOXD_PROXMOX_HOST_KEY: KEY, SANDBOXD_SSH_KEY_PATH: "/k",
};

describe("proxmox config", () => {
  it("reads the environment", () => {
    // The host key may be a file holding the OpenSSH line (its comment is dropped).
    const c = loadConfig({ ...base, SANDBOXD_PROXMOX_HOST_KEY: "/hostkey.pub", SANDBOXD_PROXMOX_BRIDGE: "vmbr1", SANDBOXD_PROXMOX_INSECURE: "true", SANDBOXD_PROXMOX_CREATE_TIMEOUT: "2m" }, read);
    expect(c.provider).toBe("proxmox");
    expect(c.proxmox).toMatchObject({
      url: "https://pve.example:8006", tokenId: "sandbox@pve!sandboxd", secret: "s3cr3t", nodes: ["pve1", "pve2"], templateId: 9000,
      pool: "sandbox-pool", bridge: "vmbr1", insecure: true, hostKey: KEY, sshUser: "sandbox", tag: "sandboxd", createTimeoutMs: 120_000,
    });
  });

  it("reads per-node templates, the datacenter firewall mode and the template checks waived", () => {
    const one = loadConfig(base, read).proxmox!;
    expect(one).toMatchObject({ templateId: 9000, templates: {}, datacenterFirewall: "require", allowUnsafeTemplate: [] });
    const c = loadConfig({
      ...base, SANDBOXD_PROXMOX_TEMPLATE_ID: "pve1=9000, pve2=9001", SANDBOXD_PROXMOX_DATACENTER_FIREWALL: "warn",
      SANDBOXD_PROXMOX_ALLOW_UNSAFE_TEMPLATE: "swap,features,egress",
    }, read).proxmox!;
    expect(c).toMatchObject({ templateId: 9000, templates: { pve1: 9000, pve2: 9001 }, datacenterFirewall: "warn", allowUnsafeTemplate: ["swap", "features", "egress"] });
  });

  it("honours the seed's SANDBOX_PROXMOX_SECRET and SANDBOX_SSH_KEY_PATH", () => {
    const { SANDBOXD_PROXMOX_SECRET: _s, SANDBOXD_SSH_KEY_PATH: _k, ...rest } = base;
    const c = loadConfig({ ...rest, SANDBOX_PROXMOX_SECRET: "seed", SANDBOX_SSH_KEY_PATH: "/k" }, read);
    expect(c.proxmox).toMatchObject({ secret: "seed", sshKeyPath: "/k" });
  });

  it.each([
    [{ SANDBOXD_PROXMOX_URL: "" }, "SANDBOXD_PROXMOX_URL: required"],
    [{ SANDBOXD_PROXMOX_URL: "http://pve:8006" }, "SANDBOXD_PROXMOX_URL: expected an https:// URL"],
    [{ SANDBOXD_PROXMOX_TOKEN_ID: "root" }, "SANDBOXD_PROXMOX_TOKEN_ID: expected user@realm!tokenname"],
    [{ SANDBOXD_PROXMOX_SECRET: "" }, "SANDBOXD_PROXMOX_SECRET: required"],
    [{ SANDBOXD_PROXMOX_TEMPLATE_ID: "abc" }, "SANDBOXD_PROXMOX_TEMPLATE_ID: expected a vmid"],
    [{ SANDBOXD_PROXMOX_TEMPLATE_ID: "pve3=9000" }, "SANDBOXD_PROXMOX_TEMPLATE_ID: 'pve3=9000': expected node=vmid with a node of SANDBOXD_PROXMOX_NODES"],
    [{ SANDBOXD_PROXMOX_TEMPLATE_ID: "pve1=9000,pve1=9001" }, "SANDBOXD_PROXMOX_TEMPLATE_ID: node pve1 is named twice"],
    [{ SANDBOXD_PROXMOX_TEMPLATE_ID: "pve1=12" }, "SANDBOXD_PROXMOX_TEMPLATE_ID: expected a vmid ≥ 100"],
    [{ SANDBOXD_PROXMOX_DATACENTER_FIREWALL: "off" }, "SANDBOXD_PROXMOX_DATACENTER_FIREWALL: expected 'require' or 'warn'"],
    [{ SANDBOXD_PROXMOX_ALLOW_UNSAFE_TEMPLATE: "nesting" }, "SANDBOXD_PROXMOX_ALLOW_UNSAFE_TEMPLATE: 'nesting' is not one of privileged, features, swap"],
    [{ SANDBOXD_PROXMOX_NODES: "bad node" }, "SANDBOXD_PROXMOX_NODES: 'bad node' is not a node name"],
    [{ SANDBOXD_PROXMOX_POOL: "" }, "SANDBOXD_PROXMOX_POOL: required"],
    [{ SANDBOXD_PROXMOX_HOST_KEY: "/nope" }, "SANDBOXD_PROXMOX_HOST_KEY: neither an OpenSSH public key line nor a readable file"],
    [{ SANDBOXD_PROXMOX_INSECURE: "maybe" }, "SANDBOXD_PROXMOX_INSECURE: expected true or false"],
    [{ SANDBOXD_PROXMOX_FINGERPRINT: "AB:CD" }, "SANDBOXD_PROXMOX_FINGERPRINT: expected a SHA-256 fingerprint"],
    [{ SANDBOXD_SSH_KEY_PATH: "/missing" }, "SANDBOXD_SSH_KEY_PATH: cannot read /missing"],
  ])("rejects %o", (over, msg) => {
    expect(() => loadConfig({ ...base, SANDBOXD_SSH_KEY_PATH: "/k", ...over }, read)).toThrow(msg);
  });

  it("never puts the secret in an error", () => {
    try {
      loadConfig({ ...base, SANDBOXD_PROXMOX_NODES: "" }, read);
    } catch (e) {
      expect((e as Error).message).not.toContain("s3cr3t");
    }
  });
});

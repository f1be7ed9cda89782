/**
 * Issue 15 ("Run it in production"): deploy/systemd, checked offline without
 * systemd running. `systemd-analyze verify` accepts the unit and the
 * local-provider drop-in without a word (it prints unknown keys and bad
 * values but exits 0, so its output is what is checked); the hardening is
 * there; the stop timeout outlasts a drain; `systemd-analyze security
 * --offline` rates it; the example environment loads as a valid sandboxd
 * configuration.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type Config } from "../../server/config/config.js";
import { CANCEL_MS, DEFAULTS, ROOT, SYSTEMD, SYSTEMD_ANALYZE, flushMs, unknownNames } from "../fixtures/deploy-files.js";

/** A unit file's [Service] (or any) section: key → every value, in order. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0 || !current) throw new Error(`not key=value: ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

/** systemd's time span ("30s", "1min 30s", "90") in ms. */
function systemdSpan(v: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000 };
  let total = 0;
  for (const part of v.trim().split(/\s+/)) {
    const m = /^(\d+)(ms|s|sec|m|min|h)?$/.exec(part);
    if (!m) throw new Error(`cannot read the time span '${v}'`);
    total += Number(m[1]) * (m[2] ? units[m[2]]! : 1000);
  }
  return total;
}

/** KEY=VALUE lines (EnvironmentFile syntax as these files use it: no quotes, no continuation). */
function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new Error(`not KEY=VALUE: ${line}`);
    env[m[1]!] = m[2]!;
  }
  return env;
}

describe("deploy/systemd", () => {
  const unitText = fs.readFileSync(path.join(SYSTEMD, "sandboxd.service"), "utf8");
  const unit = parseUnit(unitText);
  const service = unit.get("Service")!;
  const one = (k: string) => {
    const v = service.get(k);
    expect(v, `${k}= in [Service]`).toBeDefined();
    return v![v!.length - 1]!;
  };
  let dir: string;

  beforeAll(() => {
    // A copy whose ExecStart names this machine's node (verify checks that the binary exists).
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-deploy-"));
    fs.writeFileSync(path.join(dir, "sandboxd.service"), unitText.replace(/^ExecStart=\/usr\/bin\/node /m, `ExecStart=${process.execPath} `));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const verify = () => spawnSync(SYSTEMD_ANALYZE, ["verify", "--man=no", path.join(dir, "sandboxd.service")], { encoding: "utf8", timeout: 60_000 });

  it("passes systemd-analyze verify without a warning", () => {
    const r = verify();
    expect(r.error).toBeUndefined();
    expect(`${r.stdout}${r.stderr}`).toBe("");
    expect(r.status).toBe(0);
  });

  it("is hardened: no privileges, a read-only system, few address families, no JIT-breaking MemoryDenyWriteExecute", () => {
    const want: Record<string, string> = {
      Type: "exec", NoNewPrivileges: "yes", ProtectSystem: "strict", ProtectHome: "yes", PrivateTmp: "yes", PrivateDevices: "yes",
      ProtectKernelTunables: "yes", ProtectKernelModules: "yes", ProtectControlGroups: "yes", RestrictNamespaces: "yes",
      LockPersonality: "yes", SystemCallArchitectures: "native", CapabilityBoundingSet: "", RestrictAddressFamilies: "AF_INET AF_INET6 AF_UNIX",
      StateDirectory: "sandboxd", ConfigurationDirectory: "sandboxd", EnvironmentFile: "/etc/sandboxd/sandboxd.env",
      Restart: "on-failure", KillSignal: "SIGTERM", WorkingDirectory: "/opt/sandboxd",
    };
    for (const [k, v] of Object.entries(want)) expect(one(k), k).toBe(v);
    expect(service.has("MemoryDenyWriteExecute")).toBe(false);
    expect(one("User") === "sandboxd" || one("DynamicUser") === "yes").toBe(true);
    expect(systemdSpan(one("RestartSec"))).toBeGreaterThan(0);
    // What scripts/start.sh ends in.
    expect(one("ExecStart")).toMatch(/^\/\S*node --max-semi-space-size=64 --import tsx server\/main\.ts$/);
    expect(fs.readFileSync(path.join(ROOT, "scripts/start.sh"), "utf8")).toMatch(/^exec node --max-semi-space-size=64 --import tsx server\/main\.ts$/m);
  });

  it("hands the Proxmox token secret and the SSH key over as credentials, by the names sandboxd reads", () => {
    const creds = new Map(service.get("LoadCredential")!.map((c) => [c.slice(0, c.indexOf(":")), c.slice(c.indexOf(":") + 1)]));
    expect([...creds.keys()].sort()).toEqual(["secrets.json", "ssh-key"]);
    const env = service.get("Environment")!.join(" ");
    expect(env).toContain("SANDBOXD_CONFIG=%d/secrets.json");
    expect(env).toContain("SANDBOXD_SSH_KEY_PATH=%d/ssh-key");
    expect(unknownNames(env.match(/\b[A-Z][A-Z0-9_]*(?==)/g) ?? [])).toEqual([]);
  });

  it("waits longer to stop than sandboxd drains (drain delay + grace + cancel), with the defaults and the example's values", () => {
    const stop = systemdSpan(one("TimeoutStopSec"));
    expect(stop).toBeGreaterThan(DEFAULTS.drainDelayMs + DEFAULTS.shutdownGraceMs + CANCEL_MS);
    const c = exampleConfig();
    const env = parseEnvFile(fs.readFileSync(path.join(SYSTEMD, "sandboxd.env.example"), "utf8"));
    expect(stop).toBeGreaterThan(c.drainDelayMs + c.shutdownGraceMs + CANCEL_MS + flushMs(env));
  });

  /** The example environment plus the unit's, loaded as sandboxd would, with the credential files stubbed. */
  function exampleConfig(): Config {
    const env: Record<string, string> = parseEnvFile(fs.readFileSync(path.join(SYSTEMD, "sandboxd.env.example"), "utf8"));
    for (const e of service.get("Environment")!) for (const [, k, v] of e.matchAll(/([A-Z_]+)=(\S*)/g)) env[k!] = v!.replace("%d", "/run/credentials/sandboxd.service");
    const files: Record<string, string> = {
      "/run/credentials/sandboxd.service/secrets.json": JSON.stringify({ proxmoxSecret: "00000000-0000-0000-0000-000000000000" }),
      "/run/credentials/sandboxd.service/ssh-key": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
      [env.SANDBOXD_PROXMOX_CA_FILE!]: "-----BEGIN CERTIFICATE-----\n",
    };
    const readFile = (p: string) => {
      if (files[p] === undefined) throw new Error(`ENOENT: ${p}`);
      return files[p]!;
    };
    return loadConfig(env, readFile, (p) => p === env.SANDBOXD_AUTH_TOKENS_FILE);
  }

  it("has an example environment that is a valid configuration, with known names only", () => {
    const env = parseEnvFile(fs.readFileSync(path.join(SYSTEMD, "sandboxd.env.example"), "utf8"));
    expect(unknownNames(Object.keys(env))).toEqual([]);
    // Commented-out settings too.
    const commented = [...fs.readFileSync(path.join(SYSTEMD, "sandboxd.env.example"), "utf8").matchAll(/^#([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]!);
    expect(unknownNames(commented)).toEqual([]);
    const c = exampleConfig();
    expect(c.provider).toBe("proxmox");
    expect(c.proxmox?.secret).toBe("00000000-0000-0000-0000-000000000000");
    expect(c.proxmox?.sshKeyPath).toBe("/run/credentials/sandboxd.service/ssh-key");
    expect(c.auth.tokensFile).toBe("/etc/sandboxd/tokens");
    // A wildcard listen address without SANDBOXD_ALLOWED_HOSTS lists the host's
    // interfaces, which needs AF_NETLINK, which RestrictAddressFamilies forbids.
    if (c.listen.host === "0.0.0.0" || c.listen.host === "::") expect(c.auth.allowedHosts?.length).toBeGreaterThan(0);
  });

  it("rates as well protected by systemd-analyze security --offline", () => {
    const r = spawnSync(SYSTEMD_ANALYZE, ["security", "--offline=true", "--no-pager", path.join(dir, "sandboxd.service")], { encoding: "utf8", timeout: 60_000 });
    const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(`${r.stdout}${r.stderr}`);
    expect(m, r.stderr).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(2.0);
  });

  it("has a local-provider drop-in that verifies cleanly and gives root back", () => {
    const text = fs.readFileSync(path.join(SYSTEMD, "local-provider.conf"), "utf8");
    const dropIn = parseUnit(text).get("Service")!;
    expect(dropIn.get("User")).toEqual(["root"]);
    expect(dropIn.get("KillMode")).toEqual(["process"]);
    expect(dropIn.get("ProtectControlGroups")).toEqual(["no"]);
    fs.mkdirSync(path.join(dir, "sandboxd.service.d"), { recursive: true });
    fs.writeFileSync(path.join(dir, "sandboxd.service.d", "local-provider.conf"), text);
    try {
      const r = verify();
      expect(`${r.stdout}${r.stderr}`).toBe("");
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(path.join(dir, "sandboxd.service.d"), { recursive: true });
    }
  });

  it("notices a misspelt directive (the check can fail)", () => {
    fs.writeFileSync(path.join(dir, "broken.service"), fs.readFileSync(path.join(dir, "sandboxd.service"), "utf8").replace("PrivateTmp=yes", "PrivateTemp=yes"));
    const r = spawnSync(SYSTEMD_ANALYZE, ["verify", "--man=no", path.join(dir, "broken.service")], { encoding: "utf8", timeout: 60_000 });
    expect(r.stderr).toMatch(/Unknown key 'PrivateTemp'/);
  });
});

import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseDuration, parseListen } from "./config.js";

describe("loadConfig", () => {
  it("has defaults", () => {
    const c = loadConfig({});
    expect(c.listen).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(c.provider).toBe("local");
    expect(c.tls).toBeUndefined();
    expect(c.lease).toMatchObject({ defaultTtlMs: 600_000, maxTtlMs: 86_400_000 });
    expect(c.shutdownGraceMs).toBe(10_000);
  });

  it("reads env vars", () => {
    const c = loadConfig({
      SANDBOXD_LISTEN: "0.0.0.0:9000", SANDBOXD_AUTH_INSECURE_NO_AUTH: "1", SANDBOXD_LOG_LEVEL: "debug", SANDBOXD_LEASE_DEFAULT_TTL: "2s",
      SANDBOXD_LEASE_MAX_TTL: "1h", SANDBOXD_TLS_CERT: "/c", SANDBOXD_TLS_KEY: "/k", SANDBOXD_SHUTDOWN_GRACE: "500ms",
      SANDBOXD_LOCAL_INSTANCE: "sbx", SANDBOXD_LOCAL_SUBNET: "198.18.5.0/24",
    });
    expect(c.listen).toEqual({ host: "0.0.0.0", port: 9000 });
    expect(c.logLevel).toBe("debug");
    expect(c.lease).toMatchObject({ defaultTtlMs: 2000, maxTtlMs: 3_600_000 });
    expect(c.tls).toEqual({ certFile: "/c", keyFile: "/k" });
    expect(c.shutdownGraceMs).toBe(500);
    expect(c.local).toMatchObject({ instance: "sbx", subnet: "198.18.5.0/24" });
  });

  it("reads the local runtime's per-sandbox limits and totals (unset: derived from the host)", () => {
    expect(loadConfig({}).local).toMatchObject({ limits: { maxSandboxes: undefined, pidsMax: undefined }, totals: { totalMemoryMiB: undefined } });
    const c = loadConfig({
      SANDBOXD_LOCAL_MAX_SANDBOXES: "20", SANDBOXD_LOCAL_MAX_MEMORY_MIB: "4096", SANDBOXD_LOCAL_PIDS_MAX: "512",
      SANDBOXD_LOCAL_TOTAL_MEMORY_MIB: "16384", SANDBOXD_LOCAL_TOTAL_PIDS: "20000", SANDBOXD_LOCAL_DISK_RESERVE_GIB: "0",
    });
    expect(c.local.limits).toMatchObject({ maxSandboxes: 20, maxMemoryMiB: 4096, pidsMax: 512 });
    expect(c.local.totals).toMatchObject({ totalMemoryMiB: 16384, totalPids: 20000, diskReserveGiB: 0 });
    expect(() => loadConfig({ SANDBOXD_LOCAL_PIDS_MAX: "8" })).toThrow(/SANDBOXD_LOCAL_PIDS_MAX/);
    expect(() => loadConfig({ SANDBOXD_LOCAL_TOTAL_MEMORY_MIB: "lots" })).toThrow(/SANDBOXD_LOCAL_TOTAL_MEMORY_MIB/);
  });

  it("reads the egress policy and the isolation check interval, validated", () => {
    const d = loadConfig({});
    expect(d.egress).toEqual({ deny: [], allow: [], ports: undefined, newConnRate: 50 });
    expect(d.local.isolationCheckIntervalMs).toBe(2000);
    const c = loadConfig({
      SANDBOXD_EGRESS_DENY: "203.0.113.7, 192.0.2.0/24", SANDBOXD_EGRESS_ALLOW: "10.20.0.0/16", SANDBOXD_EGRESS_PORTS: "80,443",
      SANDBOXD_EGRESS_NEW_CONN_RATE: "0", SANDBOXD_LOCAL_ISOLATION_CHECK_INTERVAL: "500ms",
    });
    expect(c.egress).toEqual({ deny: ["203.0.113.7/32", "192.0.2.0/24"], allow: ["10.20.0.0/16"], ports: [[80, 80], [443, 443]], newConnRate: 0 });
    expect(c.local.isolationCheckIntervalMs).toBe(500);
    expect(loadConfig({ SANDBOXD_CONFIG: "/c.json" }, () => JSON.stringify({ egressAllow: ["10.1.0.0/16", "10.2.0.0/16"] })).egress.allow).toEqual(["10.1.0.0/16", "10.2.0.0/16"]);
    expect(() => loadConfig({ SANDBOXD_EGRESS_ALLOW: "10.0.0.1/8" })).toThrow(/SANDBOXD_EGRESS_ALLOW: .*host bits set/);
    expect(() => loadConfig({ SANDBOXD_EGRESS_DENY: "internal.example" })).toThrow(/SANDBOXD_EGRESS_DENY/);
    expect(() => loadConfig({ SANDBOXD_EGRESS_PORTS: "80,http" })).toThrow(/SANDBOXD_EGRESS_PORTS/);
    expect(() => loadConfig({ SANDBOXD_EGRESS_NEW_CONN_RATE: "-1" })).toThrow(/SANDBOXD_EGRESS_NEW_CONN_RATE/);
    expect(() => loadConfig({ SANDBOXD_LOCAL_ISOLATION_CHECK_INTERVAL: "0s" })).toThrow(/SANDBOXD_LOCAL_ISOLATION_CHECK_INTERVAL/);
  });

  it("reads the admin listener and the connection policy (keepalive pings, maximum age)", () => {
    const d = loadConfig({});
    expect(d.admin).toEqual({ host: "127.0.0.1", port: 9090 });
    expect(d.connections).toEqual({ keepaliveIntervalMs: 30_000, keepaliveTimeoutMs: 20_000, maxConnectionAgeMs: 0, maxConnectionAgeGraceMs: 30_000 });
    const c = loadConfig({
      SANDBOXD_ADMIN_LISTEN: "0.0.0.0:9464", SANDBOXD_KEEPALIVE_INTERVAL: "0", SANDBOXD_KEEPALIVE_TIMEOUT: "5s",
      SANDBOXD_MAX_CONNECTION_AGE: "30m", SANDBOXD_MAX_CONNECTION_AGE_GRACE: "2h",
    });
    expect(c.admin).toEqual({ host: "0.0.0.0", port: 9464 });
    expect(c.connections).toEqual({ keepaliveIntervalMs: 0, keepaliveTimeoutMs: 5000, maxConnectionAgeMs: 1_800_000, maxConnectionAgeGraceMs: 7_200_000 });
    expect(loadConfig({ SANDBOXD_ADMIN_LISTEN: "off" }).admin).toBeUndefined();
    expect(() => loadConfig({ SANDBOXD_ADMIN_LISTEN: "9090" })).toThrow("SANDBOXD_ADMIN_LISTEN: expected host:port or 'off', got '9090'");
    expect(() => loadConfig({ SANDBOXD_KEEPALIVE_TIMEOUT: "0" })).toThrow(/SANDBOXD_KEEPALIVE_TIMEOUT: expected a positive duration/);
  });

  it("env overrides the file", () => {
    const file = JSON.stringify({ listen: "127.0.0.1:7000", logLevel: "warn", leaseDefaultTtl: "5m" });
    const c = loadConfig({ SANDBOXD_CONFIG: "/etc/x.json", SANDBOXD_LOG_LEVEL: "error" }, () => file);
    expect(c.listen.port).toBe(7000);
    expect(c.logLevel).toBe("error");
    expect(c.lease.defaultTtlMs).toBe(300_000);
  });

  it.each([
    [{ SANDBOXD_LISTEN: "x" }, "SANDBOXD_LISTEN: expected host:port, got 'x'"],
    [{ SANDBOXD_LISTEN: "h:70000" }, "SANDBOXD_LISTEN: expected host:port"],
    [{ SANDBOXD_PROVIDER: "proxmox" }, "SANDBOXD_PROXMOX_URL: required when SANDBOXD_PROVIDER=proxmox"],
    [{ SANDBOXD_PROVIDER: "aws" }, "SANDBOXD_PROVIDER: expected 'local'"],
    [{ SANDBOXD_TLS_CERT: "/c" }, "SANDBOXD_TLS_CERT and SANDBOXD_TLS_KEY"],
    [{ SANDBOXD_LOG_LEVEL: "loud" }, "SANDBOXD_LOG_LEVEL: expected one of"],
    [{ SANDBOXD_LEASE_DEFAULT_TTL: "soon" }, "SANDBOXD_LEASE_DEFAULT_TTL: expected a positive duration"],
    [{ SANDBOXD_LEASE_DEFAULT_TTL: "2h", SANDBOXD_LEASE_MAX_TTL: "1h" }, "SANDBOXD_LEASE_DEFAULT_TTL: the default lease"],
    [{ SANDBOXD_DEFAULT_CORES: "0" }, "SANDBOXD_DEFAULT_CORES: expected an integer ≥ 1"],
    [{ SANDBOXD_LOCAL_SUBNET: "nope" }, "SANDBOXD_LOCAL_SUBNET: expected a CIDR"],
    [{ SANDBOXD_SHUTDOWN_GRACE: "-1s" }, "SANDBOXD_SHUTDOWN_GRACE"],
  ])("rejects %o", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it("names the file setting at fault", () => {
    expect(() => loadConfig({ SANDBOXD_CONFIG: "/c.json" }, () => '{"listen":"bad"}')).toThrow("listen (in /c.json): expected host:port, got 'bad'");
    expect(() => loadConfig({ SANDBOXD_CONFIG: "/c.json" }, () => '{"lisen":"x"}')).toThrow("unknown setting 'lisen'");
    expect(() => loadConfig({ SANDBOXD_CONFIG: "/c.json" }, () => "{")).toThrow("SANDBOXD_CONFIG: /c.json is not valid JSON");
    expect(() => loadConfig({ SANDBOXD_CONFIG: "/c.json" }, () => { throw new Error("ENOENT"); })).toThrow("SANDBOXD_CONFIG: cannot read /c.json");
  });
});

describe("parsers", () => {
  it("parses listen addresses and durations", () => {
    expect(parseListen("[::1]:80")).toEqual({ host: "::1", port: 80 });
    expect(parseListen("localhost:0")).toEqual({ host: "localhost", port: 0 });
    expect(parseListen(":80")).toBeUndefined();
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("250")).toBe(250);
    expect(parseDuration("24h")).toBe(86_400_000);
    expect(parseDuration("1d")).toBeUndefined();
  });
});

import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";
import { quotaOf } from "./quotas.js";

const ENV = "SANDBOXD_TENANT_QUOTAS";

describe("SANDBOXD_TENANT_QUOTAS", () => {
  it("is off by default: every tenant unlimited", () => {
    const c = loadConfig({});
    expect(c.quotas.tenants.size).toBe(0);
    expect(quotaOf(c.quotas, "anyone")).toEqual({});
  });

  it("reads JSON from the environment: '*' for tenants not listed, listed tenants do not inherit it", () => {
    const c = loadConfig({
      [ENV]: JSON.stringify({
        "*": { sandboxes: 20, cores: 40, memoryMiB: 65536, diskGiB: 500, maxLeaseTtl: "24h", createsPerMinute: 60 },
        agents: { sandboxes: 5, maxLeaseTtl: "30m" },
      }),
    });
    expect(quotaOf(c.quotas, "someone")).toEqual({ sandboxes: 20, cores: 40, memoryMiB: 65536, diskGiB: 500, maxLeaseTtlMs: 86_400_000, createsPerMinute: 60 });
    expect(quotaOf(c.quotas, "agents")).toEqual({ sandboxes: 5, maxLeaseTtlMs: 1_800_000 });
  });

  it("reads the object (or JSON text) from the config file as tenantQuotas; the environment wins", () => {
    const file = JSON.stringify({ tenantQuotas: { "team-a": { memoryMiB: 4096 } } });
    expect(quotaOf(loadConfig({ SANDBOXD_CONFIG: "/c.json" }, () => file).quotas, "team-a")).toEqual({ memoryMiB: 4096 });
    const text = JSON.stringify({ tenantQuotas: JSON.stringify({ "*": { sandboxes: 0 } }) });
    expect(quotaOf(loadConfig({ SANDBOXD_CONFIG: "/c.json" }, () => text).quotas, "x")).toEqual({ sandboxes: 0 });
    const both = loadConfig({ SANDBOXD_CONFIG: "/c.json", [ENV]: '{"team-a": {"cores": 2}}' }, () => file);
    expect(quotaOf(both.quotas, "team-a")).toEqual({ cores: 2 });
  });

  it.each([
    ["not json", `${ENV}: not valid JSON`],
    ["[1]", `${ENV}: expected a JSON object from tenant`],
    ['{"Bad Tenant": {}}', `${ENV}: tenant "Bad Tenant": not a tenant name`],
    ['{"a": 3}', `${ENV}: tenant "a": expected an object of limits`],
    ['{"a": {"sandboxes": -1}}', `${ENV}: tenant "a": sandboxes: expected an integer ≥ 0, got -1`],
    ['{"*": {"memoryMiB": 1.5}}', `${ENV}: tenant "*": memoryMiB: expected an integer ≥ 0, got 1.5`],
    ['{"a": {"cores": "4"}}', `${ENV}: tenant "a": cores: expected an integer ≥ 0, got "4"`],
    ['{"a": {"maxLeaseTtl": "forever"}}', `${ENV}: tenant "a": maxLeaseTtl: expected a positive duration`],
    ['{"a": {"maxLeaseTtl": "0s"}}', `${ENV}: tenant "a": maxLeaseTtl: expected a positive duration`],
    ['{"a": {"memory": 512}}', `${ENV}: tenant "a": unknown field 'memory' (known: sandboxes, cores, memoryMiB, diskGiB, createsPerMinute, maxLeaseTtl)`],
  ])("rejects %s, naming the setting and the field", (value, message) => {
    expect(() => loadConfig({ [ENV]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [ENV]: value })).toThrow(message);
  });

  it("names the file setting when the file is at fault", () => {
    const file = JSON.stringify({ tenantQuotas: { a: { diskGiB: "lots" } } });
    expect(() => loadConfig({ SANDBOXD_CONFIG: "/etc/sandboxd.json" }, () => file)).toThrow('tenantQuotas (in /etc/sandboxd.json): tenant "a": diskGiB');
  });
});

import { describe, expect, it } from "vitest";
import { loadConfig } from "../config/config.js";
import { hostOf } from "./web-safety.js";

const exists = () => true;
const load = (env: Record<string, string>) => loadConfig(env, () => "", exists);

describe("auth settings", () => {
  it("without any: loopback serves without credentials; beyond it sandboxd refuses unless forced", () => {
    expect(load({}).auth).toMatchObject({ insecureNoAuth: false, corsOrigins: [], allowedHosts: undefined });
    expect(load({ SANDBOXD_LISTEN: "[::1]:80" }).auth.insecureNoAuth).toBe(false);
    expect(() => load({ SANDBOXD_LISTEN: "10.0.0.5:80" })).toThrow(/refusing to listen on 10\.0\.0\.5 without authentication/);
    expect(load({ SANDBOXD_LISTEN: "10.0.0.5:80", SANDBOXD_AUTH_TOKENS_FILE: "/t" }).auth.tokensFile).toBe("/t");
  });

  it("checks the combinations: client CA needs TLS and identities; mesh identities need loopback", () => {
    const tls = { SANDBOXD_TLS_CERT: "/c", SANDBOXD_TLS_KEY: "/k" };
    expect(() => load({ SANDBOXD_AUTH_CLIENT_CA: "/ca" })).toThrow(/SANDBOXD_AUTH_CLIENT_CA: client certificates need TLS/);
    expect(() => load({ ...tls, SANDBOXD_AUTH_CLIENT_CA: "/ca" })).toThrow(/set both/);
    expect(() => load({ ...tls, SANDBOXD_AUTH_CLIENT_CA: "/ca", SANDBOXD_AUTH_IDENTITIES: "bogus" })).toThrow(/SANDBOXD_AUTH_IDENTITIES: 'bogus'/);
    const c = load({ ...tls, SANDBOXD_LISTEN: "0.0.0.0:443", SANDBOXD_AUTH_CLIENT_CA: "/ca", SANDBOXD_AUTH_IDENTITIES: "spiffe://td/ns/a/*=agents:viewer" });
    expect(c.auth.identities?.resolve(["spiffe://td/ns/a/sa/x"], "mtls")).toEqual({ tenant: "agents", role: "viewer", name: "spiffe://td/ns/a/sa/x", via: "mtls" });
    expect(() => load({ SANDBOXD_LISTEN: "0.0.0.0:80", SANDBOXD_AUTH_MESH_IDENTITIES: "spiffe://td/x=a" })).toThrow(/must listen on loopback/);
    expect(() => loadConfig({ SANDBOXD_AUTH_TOKENS_FILE: "/nonexistent/tokens" })).toThrow(/no such file/);
  });

  it("reads public services, allowed hosts and CORS origins", () => {
    const c = load({ SANDBOXD_AUTH_PUBLIC_SERVICES: "none", SANDBOXD_ALLOWED_HOSTS: "sandboxd.internal, 10.0.0.5", SANDBOXD_CORS_ORIGINS: "https://app.example.com" });
    expect(c.auth).toMatchObject({ publicServices: [], allowedHosts: ["sandboxd.internal", "10.0.0.5"], corsOrigins: ["https://app.example.com"] });
    expect(load({}).auth.publicServices).toContain("grpc.health.v1.Health");
    expect(() => load({ SANDBOXD_CORS_ORIGINS: "*" })).toThrow(/not an origin/);
  });

  it("takes the host out of an authority", () => {
    expect(["localhost:8080", "LOCALHOST", "[::1]:443", "::1", "10.0.0.5:1"].map(hostOf)).toEqual(["localhost", "localhost", "::1", "::1", "10.0.0.5"]);
  });
});

/**
 * The authentication and web-safety settings (SANDBOXD_AUTH_*,
 * SANDBOXD_ALLOWED_HOSTS, SANDBOXD_CORS_ORIGINS), checked at start: sandboxd
 * refuses to listen on a non-loopback address without authentication unless
 * told to (SANDBOXD_AUTH_INSECURE_NO_AUTH=1), and says why.
 */
import { IdentityMap, IdentityMapError } from "./identities.js";

export interface AuthConfig {
  /** The token file (token-file.ts). */
  tokensFile?: string;
  /** PEM CA whose client certificates are accepted (mTLS; needs TLS). */
  clientCaFile?: string;
  /** Client certificate identities → tenants. */
  identities?: IdentityMap;
  /** x-forwarded-client-cert identities → tenants (behind a mesh sidecar; loopback only). */
  meshIdentities?: IdentityMap;
  /** No authentication although listening beyond loopback (forced). */
  insecureNoAuth: boolean;
  /** Services served without credentials ("none": every service needs them). */
  publicServices: string[];
  /** Host names served; undefined: the defaults for the listen address (web-safety.ts). */
  allowedHosts?: string[];
  corsOrigins: string[];
}

export const AUTH_SETTINGS = {
  authTokensFile: "SANDBOXD_AUTH_TOKENS_FILE",
  authClientCa: "SANDBOXD_AUTH_CLIENT_CA",
  authIdentities: "SANDBOXD_AUTH_IDENTITIES",
  authMeshIdentities: "SANDBOXD_AUTH_MESH_IDENTITIES",
  authInsecureNoAuth: "SANDBOXD_AUTH_INSECURE_NO_AUTH",
  authPublicServices: "SANDBOXD_AUTH_PUBLIC_SERVICES",
  allowedHosts: "SANDBOXD_ALLOWED_HOSTS",
  corsOrigins: "SANDBOXD_CORS_ORIGINS",
} as const;

export const DEFAULT_PUBLIC_SERVICES = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

export class AuthConfigError extends Error {
  override readonly name = "AuthConfigError";
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

type Get = (s: keyof typeof AUTH_SETTINGS) => { value: string | undefined; name: string };

const list = (v: string | undefined) => (v ?? "").split(",").map((s) => s.trim()).filter(Boolean);

export function parseAuthConfig(get: Get, listenHost: string, tls: boolean, exists: (path: string) => boolean): AuthConfig {
  const identities = (s: "authIdentities" | "authMeshIdentities"): IdentityMap | undefined => {
    const { value, name } = get(s);
    if (value === undefined) return undefined;
    try {
      return IdentityMap.parse(value);
    } catch (e) {
      if (e instanceof IdentityMapError) throw new AuthConfigError(`${name}: ${e.message}`);
      throw e;
    }
  };
  const tokens = get("authTokensFile");
  if (tokens.value !== undefined && !exists(tokens.value)) throw new AuthConfigError(`${tokens.name}: no such file ${tokens.value}`);
  const ca = get("authClientCa");
  if (ca.value !== undefined && !tls) throw new AuthConfigError(`${ca.name}: client certificates need TLS (SANDBOXD_TLS_CERT and SANDBOXD_TLS_KEY)`);
  if (ca.value !== undefined && !exists(ca.value)) throw new AuthConfigError(`${ca.name}: no such file ${ca.value}`);
  const certIds = identities("authIdentities");
  if ((ca.value === undefined) !== (certIds === undefined)) {
    throw new AuthConfigError(`${get("authClientCa").name} and ${get("authIdentities").name}: set both (the CA that signs client certificates, and which identity is which tenant) or neither`);
  }
  const mesh = identities("authMeshIdentities");
  if (mesh && !isLoopback(listenHost)) {
    throw new AuthConfigError(
      `${get("authMeshIdentities").name}: the mesh identity header is trusted only from the sidecar, so sandboxd must listen on loopback (got ${listenHost}); anyone else reaching the port could send the header`,
    );
  }
  const insecure = get("authInsecureNoAuth");
  if (insecure.value !== undefined && !["0", "1", "true", "false"].includes(insecure.value)) throw new AuthConfigError(`${insecure.name}: expected 1 or 0, got '${insecure.value}'`);
  const insecureNoAuth = insecure.value === "1" || insecure.value === "true";
  const anyAuth = tokens.value !== undefined || ca.value !== undefined || mesh !== undefined;
  if (!anyAuth && !isLoopback(listenHost) && !insecureNoAuth) {
    throw new AuthConfigError(
      `refusing to listen on ${listenHost} without authentication: anyone who reaches the port could run commands in every sandbox. ` +
        `Set SANDBOXD_AUTH_TOKENS_FILE (API tokens), SANDBOXD_AUTH_CLIENT_CA with SANDBOXD_AUTH_IDENTITIES (mTLS), listen on 127.0.0.1, ` +
        `or, knowingly, SANDBOXD_AUTH_INSECURE_NO_AUTH=1`,
    );
  }
  const publicServices = get("authPublicServices");
  const hosts = get("allowedHosts");
  const origins = list(get("corsOrigins").value);
  for (const o of origins) {
    if (!/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(o) && !/^https?:\/\/\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(o)) {
      throw new AuthConfigError(`${get("corsOrigins").name}: '${o}' is not an origin like https://app.example.com`);
    }
  }
  return {
    tokensFile: tokens.value, clientCaFile: ca.value, identities: certIds, meshIdentities: mesh, insecureNoAuth,
    publicServices: publicServices.value === undefined ? DEFAULT_PUBLIC_SERVICES : publicServices.value === "none" ? [] : list(publicServices.value),
    allowedHosts: hosts.value === undefined ? undefined : list(hosts.value),
    corsOrigins: origins,
  };
}

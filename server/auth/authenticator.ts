/**
 * Authentication of every RPC, as configured at start (one or several):
 *   - API tokens: `authorization: Bearer <token>`, looked up in the token file;
 *   - mTLS: a client certificate signed by SANDBOXD_AUTH_CLIENT_CA, its
 *     identity mapped to a tenant (identities.ts);
 *   - mesh: the identity a sidecar proxy that terminated mTLS forwards in
 *     `x-forwarded-client-cert`; trusted only because sandboxd then listens
 *     on loopback, where only the sidecar reaches it (config.ts enforces it);
 *   - none: every caller is ANONYMOUS (loopback only, unless forced).
 * A token, when sent, decides; else the certificate; else the mesh header.
 * Public services (health, reflection by default) pass without credentials.
 */
import { type ContextValues, type Interceptor, createContextKey, createContextValues } from "@connectrpc/connect";
import type { TLSSocket } from "node:tls";
import { unauthenticated } from "../errors.js";
import { certificateIdentities, xfccIdentities, type IdentityMap, type PeerCertificate } from "./identities.js";
import { ANONYMOUS, checkMethod, principalKey, type Principal } from "./principal.js";
import type { TokenFile } from "./token-file.js";

/** What the TLS layer said about the connection's client certificate. */
export interface PeerInfo {
  /** A certificate was presented. */
  presented: boolean;
  /** It chains to the client CA and is within its validity. */
  authorized: boolean;
  /** Why not (node's code: CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE...). */
  error?: string;
  cert?: PeerCertificate;
}

/** What OpenSSL's verification codes (node's authorizationError) mean for a client certificate. */
const NOT_OUR_CA = "it is not signed by the client CA, SANDBOXD_AUTH_CLIENT_CA";
const REFUSALS = new Map<string, string>([
  ["CERT_HAS_EXPIRED", "it has expired"],
  ["CERT_NOT_YET_VALID", "it is not valid yet"],
  ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", NOT_OUR_CA],
  ["UNABLE_TO_GET_ISSUER_CERT", NOT_OUR_CA],
  ["UNABLE_TO_GET_ISSUER_CERT_LOCALLY", NOT_OUR_CA],
  ["DEPTH_ZERO_SELF_SIGNED_CERT", NOT_OUR_CA],
  ["SELF_SIGNED_CERT_IN_CHAIN", NOT_OUR_CA],
  ["CERT_SIGNATURE_FAILURE", "its signature does not verify"],
  ["INVALID_PURPOSE", "it is not for client authentication (extendedKeyUsage)"],
]);

const peerKey = createContextKey<PeerInfo | undefined>(undefined, { description: "sandboxd TLS peer" });

export interface AuthSettings {
  tokens?: TokenFile;
  /** Identities of client certificates (mTLS) → tenants. */
  certificates?: IdentityMap;
  /** Identities in x-forwarded-client-cert (a mesh sidecar) → tenants. */
  mesh?: IdentityMap;
  /** Fully-qualified services served without credentials ("grpc.health.v1.Health"). */
  publicServices: readonly string[];
}

export class Authenticator {
  constructor(readonly settings: AuthSettings) {}

  get enabled(): boolean {
    const s = this.settings;
    return Boolean(s.tokens || s.certificates || s.mesh);
  }

  /** For connectNodeAdapter's contextValues: the connection's client certificate, read once per request. */
  contextValues = (req: { socket?: unknown }): ContextValues => {
    const values = createContextValues();
    const socket = req.socket as Partial<TLSSocket> | undefined;
    if (this.settings.certificates && typeof socket?.getPeerCertificate === "function") {
      const cert = socket.getPeerCertificate();
      const presented = Boolean(cert && Object.keys(cert).length > 0);
      const error = socket.authorizationError;
      values.set(peerKey, {
        presented, authorized: presented && socket.authorized === true, cert: presented ? cert : undefined,
        ...(error ? { error: String(error instanceof Error ? (error as NodeJS.ErrnoException).code ?? error.message : error) } : {}),
      });
    }
    return values;
  };

  /** The caller, or unauthenticated. `header` is the request's; `peer` what contextValues found. */
  authenticate(header: Headers, peer: PeerInfo | undefined): Principal {
    const { tokens, certificates, mesh } = this.settings;
    if (!this.enabled) return ANONYMOUS;
    const auth = header.get("authorization");
    if (auth !== null && tokens) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      if (!m) throw unauthenticated("the authorization header must be 'Bearer <token>'");
      const p = tokens.authenticate(m[1]!);
      if (!p) throw unauthenticated("the API token is not valid (unknown, revoked or mistyped)");
      return p;
    }
    if (certificates && peer?.presented) {
      if (!peer.authorized) {
        const meaning = peer.error && REFUSALS.get(peer.error);
        const why = peer.error ? `${peer.error}${meaning ? ` (${meaning})` : ""}` : "not signed by the client CA";
        throw unauthenticated(`the client certificate was refused: ${why}`);
      }
      const ids = certificateIdentities(peer.cert);
      const p = certificates.resolve(ids, "mtls");
      if (!p) throw unauthenticated(`the client certificate's identity (${ids.join(", ") || "none"}) is not mapped to a tenant (SANDBOXD_AUTH_IDENTITIES)`);
      return p;
    }
    if (mesh) {
      const xfcc = header.get("x-forwarded-client-cert");
      const ids = xfccIdentities(xfcc);
      if (ids.length > 0) {
        const p = mesh.resolve(ids, "mesh");
        if (!p) throw unauthenticated(`the mesh identity (${ids.join(", ")}) is not mapped to a tenant (SANDBOXD_AUTH_MESH_IDENTITIES)`);
        return p;
      }
      if (xfcc !== null) {
        throw unauthenticated("the x-forwarded-client-cert header names no identity (no spiffe:// URI or single CN in its last element, or unbalanced quotes)");
      }
    }
    const ways = [tokens && "'authorization: Bearer <token>'", certificates && "a client certificate", mesh && "a mesh identity"].filter(Boolean);
    throw unauthenticated(`credentials required: ${ways.join(" or ")}`);
  }

  /** Authenticates each RPC (but those of public services) and checks its role may call the method. */
  interceptor(): Interceptor {
    const open = new Set(this.settings.publicServices);
    return (next) => async (req) => {
      if (open.has(req.service.typeName)) return next(req);
      const principal = this.authenticate(req.header, req.contextValues.get(peerKey));
      req.contextValues.set(principalKey, principal);
      checkMethod(principal, req.method.name);
      return next(req);
    };
  }
}

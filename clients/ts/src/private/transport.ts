/** The default transport: connect-node's gRPC transport over HTTP/2 (h2c, or TLS). */
import type { Transport } from "@connectrpc/connect";

export interface TlsOptions {
  /** PEM CA certificate(s) to trust instead of the system's. */
  ca?: string | Uint8Array;
  /** PEM client certificate (mutual TLS). */
  cert?: string | Uint8Array;
  /** PEM private key of `cert`. */
  key?: string | Uint8Array;
  /** Server name to verify, when it differs from the address's host. */
  servername?: string;
}

/** "host:port" or a URL; http:// unless TLS options are given or the URL says https. */
export function baseUrlOf(address: string, tls: TlsOptions | boolean | undefined): string {
  if (/^https?:\/\//.test(address)) return address.replace(/\/+$/, "");
  return `${tls ? "https" : "http"}://${address}`;
}

export interface DefaultTransport {
  transport: Transport;
  close(): void;
}

/** Imports connect-node only here, so that a browser build passing its own transport never needs it. */
export async function createDefaultTransport(baseUrl: string, tls: TlsOptions | boolean | undefined): Promise<DefaultTransport> {
  const { createGrpcTransport, Http2SessionManager } = await import("@connectrpc/connect-node");
  const nodeOptions =
    typeof tls === "object"
      ? {
          ...(tls.ca !== undefined && { ca: toPem(tls.ca) }),
          ...(tls.cert !== undefined && { cert: toPem(tls.cert) }),
          ...(tls.key !== undefined && { key: toPem(tls.key) }),
          ...(tls.servername !== undefined && { servername: tls.servername }),
        }
      : {};
  const sessionManager = new Http2SessionManager(baseUrl, { pingIntervalMs: 10_000, pingTimeoutMs: 10_000 }, nodeOptions);
  return {
    transport: createGrpcTransport({ baseUrl, sessionManager }),
    close: () => sessionManager.abort(),
  };
}

function toPem(v: string | Uint8Array): string {
  return typeof v === "string" ? v : new TextDecoder().decode(v);
}

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

/**
 * HTTP/2 receive windows. Node's defaults (64 KiB per stream and per
 * connection) let the server send one window per round trip, which held
 * command output and downloads to a quarter of what the server can send;
 * grpc-go and grpcio size theirs dynamically up to several MiB.
 */
export const STREAM_WINDOW = 4 * 2 ** 20;
export const CONNECTION_WINDOW = 16 * 2 ** 20;

/** Imports connect-node only here, so that a browser build passing its own transport never needs it. */
export async function createDefaultTransport(baseUrl: string, tls: TlsOptions | boolean | undefined): Promise<DefaultTransport> {
  const { createGrpcTransport, Http2SessionManager } = await import("@connectrpc/connect-node");
  const nodeOptions = {
    settings: { initialWindowSize: STREAM_WINDOW },
    ...(typeof tls === "object"
      ? {
          ...(tls.ca !== undefined && { ca: toPem(tls.ca) }),
          ...(tls.cert !== undefined && { cert: toPem(tls.cert) }),
          ...(tls.key !== undefined && { key: toPem(tls.key) }),
          ...(tls.servername !== undefined && { servername: tls.servername }),
        }
      : {}),
  };
  /** connect-node opens the sessions itself: the connection window is widened on each one's first stream. */
  class WideWindowSessions extends Http2SessionManager {
    readonly #widened = new WeakSet<object>();
    override async request(...args: Parameters<InstanceType<typeof Http2SessionManager>["request"]>) {
      const stream = await super.request(...args);
      const session = stream.session;
      if (session && !this.#widened.has(session)) {
        this.#widened.add(session);
        session.setLocalWindowSize(CONNECTION_WINDOW);
      }
      return stream;
    }
  }
  const sessionManager = new WideWindowSessions(baseUrl, { pingIntervalMs: 10_000, pingTimeoutMs: 10_000 }, nodeOptions);
  return {
    transport: createGrpcTransport({ baseUrl, sessionManager }),
    close: () => sessionManager.abort(),
  };
}

function toPem(v: string | Uint8Array): string {
  return typeof v === "string" ? v : new TextDecoder().decode(v);
}

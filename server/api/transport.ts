/**
 * One port for every client: gRPC, gRPC-Web and Connect over HTTP/2 and
 * Connect/gRPC-Web over HTTP/1.1.
 * - Plaintext: a net.Server peeks at each connection's first bytes; the
 *   HTTP/2 connection preface ("PRI * HTTP/2.0") goes to an h2c server,
 *   anything else to an HTTP/1.1 server with the same handler.
 * - TLS: http2.createSecureServer with allowHTTP1 (ALPN picks the protocol).
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { applySessionPolicy, type SessionEvents, type SessionPolicy } from "./session-policy.js";

export type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n");

export interface Listener {
  readonly port: number;
  readonly host: string;
  /** RPCs whose response has not finished. */
  inFlight(): number;
  /** Stops accepting connections and asks open ones to wind down (GOAWAY, idle HTTP/1.1 closed). */
  stopAccepting(): void;
  /** Drops every connection. */
  destroyAll(): void;
  /** Open TCP connections, and bytes on the wire (TLS included) since the listener started. */
  stats(): { connections: number; bytesReceived: number; bytesSent: number };
}

export interface ListenOptions {
  tls?: ServerTls;
  /** Keepalive pings and maximum connection age for HTTP/2 connections (none when absent). */
  sessions?: SessionPolicy;
  events?: SessionEvents;
}

/** TLS material; with `ca`, clients are asked for a certificate, which the auth layer then checks (server/auth). */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

export async function listen(handler: Handler, host: string, port: number, options: ListenOptions = {}): Promise<Listener> {
  const { tls } = options;
  let active = 0;
  const counted: Handler = (req, res) => {
    active++;
    res.once("close", () => active--);
    handler(req, res);
  };
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  };
  // Byte counts come from the TCP sockets only (a TLS socket sits on one and would count twice).
  const tcp = new Set<net.Socket>();
  const closedBytes = { received: 0, sent: 0 };
  const countBytes = (s: net.Socket) => {
    tcp.add(s);
    s.once("close", () => {
      tcp.delete(s);
      closedBytes.received += s.bytesRead;
      closedBytes.sent += s.bytesWritten;
    });
  };

  let outer: net.Server;
  const HTTP2_WINDOW = 8 * 1024 * 1024;
  let h1: http.Server | undefined;
  let h2: http2.Http2Server | http2.Http2SecureServer;
  if (tls) {
    // A refused client certificate is not a handshake failure: the RPC gets UNAUTHENTICATED saying why.
    const clientCerts = tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: false } : {};
    h2 = http2.createSecureServer({ cert: tls.cert, key: tls.key, ...clientCerts, allowHTTP1: true, settings: { initialWindowSize: HTTP2_WINDOW } }, counted);
    outer = h2;
    h2.on("connection", track);
    h2.on("connection", countBytes);
    h2.on("secureConnection", track);
    h2.on("connection", (socket: net.Socket) => socket.setNoDelay(true));
  } else {
    h2 = http2.createServer({ settings: { initialWindowSize: HTTP2_WINDOW } }, counted);
    h1 = http.createServer(counted);
    const h1s = h1;
    const h2s = h2;
    // noDelay: small gRPC frames (headers, trailers, short output) must not wait for Nagle.
    outer = net.createServer({ noDelay: true }, (socket) => {
      track(socket);
      countBytes(socket);
      sniff(socket, (isHttp2) => {
        (isHttp2 ? h2s : h1s).emit("connection", socket);
        // The HTTP/1.1 parser reads through 'data' events, which stay off after our pause().
        if (!isHttp2) socket.resume();
      });
    });
  }
  h2.on("session", (s) => {
    // HTTP/2's default 64 KiB connection window caps uploads at one window per
    // round trip; a larger one lets a client stream files at full speed.
    s.once("localSettings", () => s.setLocalWindowSize(HTTP2_WINDOW));
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
    if (options.sessions) applySessionPolicy(s, options.sessions, options.events);
  });

  await new Promise<void>((resolve, reject) => {
    outer.once("error", reject);
    outer.listen(port, host, () => resolve());
  });
  const addr = outer.address() as net.AddressInfo;
  return {
    port: addr.port,
    host: addr.address,
    inFlight: () => active,
    stopAccepting() {
      outer.close();
      for (const s of sessions) s.close();
      h1?.closeIdleConnections();
      // HTTP/1.1 keep-alive connections close after their current response.
      h1?.on("request", (_req, res: http.ServerResponse) => res.setHeader("connection", "close"));
    },
    destroyAll() {
      for (const s of sessions) s.destroy();
      for (const s of sockets) s.destroy();
      h1?.closeAllConnections();
    },
    stats() {
      let received = closedBytes.received;
      let sent = closedBytes.sent;
      for (const s of tcp) {
        received += s.bytesRead;
        sent += s.bytesWritten;
      }
      return { connections: tcp.size, bytesReceived: received, bytesSent: sent };
    },
  };
}

/** Reads until the bytes either match the HTTP/2 preface or cannot, puts them back, then decides. */
function sniff(socket: net.Socket, decide: (isHttp2: boolean) => void): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    const matches = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (matches && seen.length < PREFACE.length) return; // need more bytes to tell
    socket.off("data", onData);
    socket.off("error", onError);
    socket.pause();
    socket.unshift(seen);
    decide(matches);
  };
  const onError = () => socket.destroy();
  socket.on("data", onData);
  socket.on("error", onError);
}

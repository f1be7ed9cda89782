/**
 * Gives every HTTP/2 session this process opens a 32 MiB connection window.
 * connect-node has no option for it, and Node's default of 64 KiB caps a
 * server stream at one window per round trip; gRPC clients in Go and Python
 * size their windows dynamically (BDP probing), so this is the fair setting
 * for measuring the server. Imported for its effect by the benchmark only.
 */
import http2 from "node:http2";
import { syncBuiltinESMExports } from "node:module";

const original = http2.connect;
(http2 as { connect: typeof http2.connect }).connect = ((...args: Parameters<typeof http2.connect>) => {
  const session = original(...args);
  session.once("connect", () => session.setLocalWindowSize(32 << 20));
  return session;
}) as typeof http2.connect;
syncBuiltinESMExports();

/** Per-stream window to pass as createGrpcTransport({ nodeOptions }). */
export const STREAM_WINDOW_OPTIONS = { settings: { initialWindowSize: 4 << 20 } };

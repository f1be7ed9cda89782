/**
 * The node HTTP request each RPC runs for, found through the async context the
 * transport runs it in (connect-node hands handlers no request): when it
 * arrived, for the Exec phase breakdown, and whether its body really ended.
 *
 * Whether a client-streaming RPC's request body really ended. Node's HTTP/2
 * compatibility layer ends a request body the same way for a clean
 * END_STREAM and for a stream the client reset (RST_STREAM) or whose
 * connection dropped, so the handler asks the HTTP/2 stream itself: a reset
 * or dropped stream is closed (node marks it closed before it ends the body),
 * while after a clean END_STREAM it stays open until we answer. Over
 * HTTP/1.1 an incomplete body errors instead, and `complete` says so.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type http from "node:http";
import type http2 from "node:http2";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

const current = new AsyncLocalStorage<{ req: NodeRequest; arrivedAt: number }>();

/** Runs the RPC handler for `req` so that the functions below can find it. */
export function runWithRequest<T>(req: NodeRequest, fn: () => T): T {
  return current.run({ req, arrivedAt: performance.now() }, fn);
}

/** When the transport handed the current request over (performance.now()), if known. */
export function requestArrivedAt(): number | undefined {
  return current.getStore()?.arrivedAt;
}

/**
 * Call once the request body has ended: true when it ended without the
 * client's clean end of stream (reset, dropped connection). False when no
 * request is known (handlers called without the transport).
 */
export function requestBodyCutOff(): boolean {
  const req = current.getStore()?.req;
  if (req === undefined) return false;
  if ("stream" in req) {
    const stream = req.stream;
    return req.aborted || stream.closed || stream.destroyed;
  }
  return req.aborted || !req.complete;
}

/**
 * Whether a client-streaming RPC's request body really ended. Node's HTTP/2
 * compatibility layer ends a request body the same way for a clean
 * END_STREAM and for a stream the client reset (RST_STREAM) or whose
 * connection dropped, so the handler asks the HTTP/2 stream itself: a reset
 * or dropped stream is closed (node marks it closed before it ends the body),
 * while after a clean END_STREAM it stays open until we answer. Over
 * HTTP/1.1 an incomplete body errors instead, and `complete` says so.
 *
 * The request is found through the async context the transport runs each
 * request in (runWithRequest), since connect-node hands handlers no request.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type http from "node:http";
import type http2 from "node:http2";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

const current = new AsyncLocalStorage<NodeRequest>();

/** Runs the RPC handler for `req` so that requestBodyCutOff() can find it. */
export function runWithRequest<T>(req: NodeRequest, fn: () => T): T {
  return current.run(req, fn);
}

/**
 * Call once the request body has ended: true when it ended without the
 * client's clean end of stream (reset, dropped connection). False when no
 * request is known (handlers called without the transport).
 */
export function requestBodyCutOff(): boolean {
  const req = current.getStore();
  if (req === undefined) return false;
  if ("stream" in req) {
    const stream = req.stream;
    return req.aborted || stream.closed || stream.destroyed;
  }
  return req.aborted || !req.complete;
}

/**
 * The node HTTP request each RPC runs for, kept in the RPC's context values
 * (connect-node's `contextValues` hook; an AsyncLocalStorage would slow every
 * promise in the process): when it arrived, for the Exec phase breakdown,
 * and whether its body really ended.
 *
 * Whether a client-streaming RPC's request body really ended: node's HTTP/2
 * compatibility layer ends a request body the same way for a clean
 * END_STREAM and for a stream the client reset (RST_STREAM) or whose
 * connection dropped, so the handler asks the HTTP/2 stream itself: a reset
 * or dropped stream is closed (node marks it closed before it ends the body),
 * while after a clean END_STREAM it stays open until we answer. Over
 * HTTP/1.1 an incomplete body errors instead, and `complete` says so.
 */
import type http from "node:http";
import type http2 from "node:http2";
import { createContextKey, type ContextValues } from "@connectrpc/connect";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type Values = { values: ContextValues };

const requestKey = createContextKey<{ req: NodeRequest; arrivedAt: number } | undefined>(undefined, { description: "sandboxd node request" });

/** For connectNodeAdapter's contextValues: remembers the request (and when it came) in the RPC's values. */
export function withNodeRequest(values: ContextValues, req: NodeRequest): ContextValues {
  return values.set(requestKey, { req, arrivedAt: performance.now() });
}

/** When the current request reached connect-node (performance.now()), if known. */
export function requestArrivedAt(ctx: Values): number | undefined {
  return ctx.values.get(requestKey)?.arrivedAt;
}

/**
 * Call once the request body has ended: true when it ended without the
 * client's clean end of stream (reset, dropped connection). False when no
 * request is known (handlers called without the transport).
 */
export function requestBodyCutOff(ctx: Values): boolean {
  const req = ctx.values.get(requestKey)?.req;
  if (req === undefined) return false;
  if ("stream" in req) {
    const stream = req.stream;
    return req.aborted || stream.closed || stream.destroyed;
  }
  return req.aborted || !req.complete;
}

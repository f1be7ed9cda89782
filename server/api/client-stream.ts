/**
 * Client-streaming uploads (Upload, UploadArchive): a header message, then
 * data chunks of at most MAX_UPLOAD_CHUNK bytes. A cut-off stream must never
 * look complete: see `data` below.
 */
import type { HandlerContext } from "@connectrpc/connect";
import { cancelled, invalidArgument } from "../errors.js";
import { requestBodyCutOff } from "./node-request.js";

export const MAX_UPLOAD_CHUNK = 4 * 2 ** 20;
/** Largest request message the server reads: a 4 MiB chunk plus framing; bigger ones are refused before decoding. */
export const UPLOAD_MESSAGE_LIMIT = MAX_UPLOAD_CHUNK + 64 * 1024;

type Part<H> = { case: "header"; value: H } | { case: "data"; value: Uint8Array } | { case: undefined; value?: undefined };

export async function headerAndData<H>(requests: AsyncIterable<{ part: Part<H> }>, ctx: HandlerContext, what: string): Promise<{ header: H; data: AsyncGenerator<Uint8Array> }> {
  const it = requests[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done && (requestBodyCutOff(ctx) || ctx.signal.aborted)) throw cancelled(`${what}: the client went away before sending anything`);
  if (first.done || first.value.part.case !== "header") throw invalidArgument("header", "the first message must be the header");
  async function* data(): AsyncGenerator<Uint8Array> {
    for (let r = await it.next(); !r.done; r = await it.next()) {
      const part = r.value.part;
      if (part.case !== "data") throw invalidArgument("header", "only the first message may be a header");
      if (part.value.length > MAX_UPLOAD_CHUNK) throw invalidArgument("data", `chunks must be at most ${MAX_UPLOAD_CHUNK} bytes, got ${part.value.length}`);
      yield part.value;
    }
    // A client reset (RST_STREAM) ends node's request body like a clean end of
    // stream; the HTTP/2 stream's own state tells them apart (node-request.ts).
    // A cut-off upload must never be put in place.
    if (requestBodyCutOff(ctx) || ctx.signal.aborted) throw cancelled(`${what}: the client went away before the end of the stream`);
  }
  return { header: first.value.part.value, data: data() };
}

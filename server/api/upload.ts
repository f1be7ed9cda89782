import type { MessageInitShape } from "@bufbuild/protobuf";
/**
 * Upload (client streaming): a header, then data chunks of at most 4 MiB. The
 * ssh layer writes a temp file and renames it only when complete, so a cut-off
 * or mismatched upload leaves nothing at the path.
 */
import type { HandlerContext } from "@connectrpc/connect";
import type { UploadRequest, UploadResponseSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { cancelled, invalidArgument } from "../errors.js";
import { upload } from "../ssh/index.js";
import { requireSandboxId, u64 } from "./convert.js";
import type { ApiDeps } from "./deps.js";
import { noteSandbox } from "./rpc-log.js";
import { useSandbox } from "./access.js";

export const MAX_UPLOAD_CHUNK = 4 * 2 ** 20;

export async function uploadFile(deps: ApiDeps, requests: AsyncIterable<UploadRequest>, ctx: HandlerContext): Promise<MessageInitShape<typeof UploadResponseSchema>> {
  const it = requests[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done || first.value.part.case !== "header") throw invalidArgument("header", "the first message must be the header");
  const h = first.value.part.value;
  const id = requireSandboxId(h.sandboxId);
  noteSandbox(ctx, id);
  if (!h.path) throw invalidArgument("path", "required");
  const release = await useSandbox(deps, ctx, id);
  ctx.signal.addEventListener("abort", release, { once: true });

  async function* data(): AsyncGenerator<Uint8Array> {
    for (let r = await it.next(); !r.done; r = await it.next()) {
      const part = r.value.part;
      if (part.case !== "data") throw invalidArgument("header", "only the first message may be a header");
      if (part.value.length > MAX_UPLOAD_CHUNK) throw invalidArgument("data", `chunks must be at most ${MAX_UPLOAD_CHUNK} bytes, got ${part.value.length}`);
      yield part.value;
    }
    // A client reset (RST_STREAM) ends node's request body like a clean end of
    // stream; only the signal, aborted from the request's 'close' a tick
    // later, tells them apart. A cut-off upload must never be renamed into place.
    await new Promise((r) => setTimeout(r, 5));
    if (ctx.signal.aborted) throw cancelled("upload: the client went away before the end of the stream");
  }

  try {
    const result = await upload(deps.registry, id, {
      path: h.path,
      source: data(),
      mode: h.mode || 0o644,
      createParents: h.makeParents,
      expectedSize: h.expectedSize === undefined ? undefined : u64(h.expectedSize, "expected_size"),
      expectedSha256: h.expectedSha256 || undefined,
      signal: ctx.signal,
    });
    return { bytesWritten: BigInt(result.bytesWritten), sha256: result.sha256 };
  } finally {
    release();
  }
}

/** Largest request message the server reads: a 4 MiB chunk plus framing; bigger ones are refused before decoding. */
export const UPLOAD_MESSAGE_LIMIT = MAX_UPLOAD_CHUNK + 64 * 1024;

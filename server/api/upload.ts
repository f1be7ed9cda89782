import type { MessageInitShape } from "@bufbuild/protobuf";
/**
 * Upload (client streaming): a header, then data chunks of at most 4 MiB. The
 * ssh layer writes a temp file and renames it only when complete, so a cut-off
 * or mismatched upload leaves nothing at the path.
 */
import type { HandlerContext } from "@connectrpc/connect";
import type { UploadRequest, UploadResponseSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { invalidArgument } from "../errors.js";
import { upload } from "../ssh/index.js";
import { headerAndData } from "./client-stream.js";
import { requireSandboxId, u64 } from "./convert.js";
import type { ApiDeps } from "./deps.js";
import { noteSandbox } from "./rpc-log.js";
import { useSandbox } from "./access.js";

export async function uploadFile(deps: ApiDeps, requests: AsyncIterable<UploadRequest>, ctx: HandlerContext): Promise<MessageInitShape<typeof UploadResponseSchema>> {
  const { header: h, data } = await headerAndData(requests, ctx, "upload");
  const id = requireSandboxId(h.sandboxId);
  noteSandbox(ctx, id);
  if (!h.path) throw invalidArgument("path", "required");
  const release = await useSandbox(deps, ctx, id);
  ctx.signal.addEventListener("abort", release, { once: true });
  try {
    const result = await upload(deps.registry, id, {
      path: h.path,
      source: data,
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

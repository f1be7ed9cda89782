/** UploadArchive (client streaming): a header, then the archive's bytes; unpacked beside the target, renamed in when whole. */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { ArchiveFormat, type UploadArchiveRequest, type UploadArchiveResponseSchema } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { invalidArgument } from "../../errors.js";
import { uploadArchive as unpack } from "../../ssh/archives/index.js";
import { useSandbox } from "../access.js";
import { headerAndData } from "../client-stream.js";
import { requireSandboxId } from "../convert.js";
import type { ApiDeps } from "../deps.js";
import { noteSandbox } from "../rpc-log.js";

export function isGzip(format: ArchiveFormat): boolean {
  if (format === ArchiveFormat.UNSPECIFIED || format === ArchiveFormat.TAR) return false;
  if (format === ArchiveFormat.TAR_GZIP) return true;
  throw invalidArgument("format", `unknown archive format ${format}`);
}

export async function uploadArchive(deps: ApiDeps, requests: AsyncIterable<UploadArchiveRequest>, ctx: HandlerContext): Promise<MessageInitShape<typeof UploadArchiveResponseSchema>> {
  const { header: h, data } = await headerAndData(requests, ctx, "upload archive");
  const id = requireSandboxId(h.sandboxId);
  noteSandbox(ctx, id);
  if (!h.path) throw invalidArgument("path", "required");
  const gzip = isGzip(h.format);
  const release = await useSandbox(deps, ctx, id);
  try {
    const r = await unpack(deps.registry, id, { path: h.path, source: data, gzip, replace: h.replace, createParents: h.makeParents, signal: ctx.signal });
    return { entries: BigInt(r.entries), archiveBytes: BigInt(r.archiveBytes), fileBytes: BigInt(r.fileBytes) };
  } finally {
    release();
  }
}

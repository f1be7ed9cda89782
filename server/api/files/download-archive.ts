/** DownloadArchive (server streaming): tar data chunks, then done with the sha256 of the bytes sent. */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { DownloadArchiveRequest, DownloadArchiveResponseSchema } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { invalidArgument } from "../../errors.js";
import { downloadArchive as pack } from "../../ssh/archives/index.js";
import { useSandbox } from "../access.js";
import { requireSandboxId } from "../convert.js";
import type { ApiDeps } from "../deps.js";
import { noteSandbox } from "../rpc-log.js";
import { isGzip } from "./upload-archive.js";

export async function* downloadArchive(deps: ApiDeps, req: DownloadArchiveRequest, ctx: HandlerContext): AsyncGenerator<MessageInitShape<typeof DownloadArchiveResponseSchema>> {
  const id = requireSandboxId(req.sandboxId);
  noteSandbox(ctx, id);
  if (!req.path) throw invalidArgument("path", "required");
  const gzip = isGzip(req.format);
  const release = await useSandbox(deps, ctx, id);
  try {
    for await (const item of pack(deps.registry, id, { path: req.path, gzip, signal: ctx.signal })) {
      if ("data" in item) yield { part: { case: "data", value: item.data } };
      else {
        const d = item.done;
        yield { part: { case: "done", value: { bytes: BigInt(d.bytes), sha256: d.sha256, entries: BigInt(d.entries), changedWhileReading: d.changedWhileReading } } };
      }
    }
  } catch (err) {
    if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason);
    throw err;
  } finally {
    release();
  }
}

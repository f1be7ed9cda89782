/** Download (server streaming): info, data chunks, done with the sha256 of the bytes sent. */
import { ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { DownloadRequest, DownloadResponseSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { invalidArgument } from "../errors.js";
import { download } from "../ssh/index.js";
import { requireSandboxId, u64 } from "./convert.js";
import type { ApiDeps } from "./deps.js";
import { noteSandbox } from "./rpc-log.js";
import { useSandbox } from "./access.js";

export async function* downloadFile(deps: ApiDeps, req: DownloadRequest, ctx: HandlerContext): AsyncGenerator<MessageInitShape<typeof DownloadResponseSchema>> {
  const id = requireSandboxId(req.sandboxId);
  noteSandbox(ctx, id);
  if (!req.path) throw invalidArgument("path", "required");
  const release = await useSandbox(deps, ctx, id);
  const events = download(deps.registry, id, { path: req.path, offset: u64(req.offset, "offset"), signal: ctx.signal });
  ctx.signal.addEventListener("abort", release, { once: true });
  try {
    for await (const ev of events) {
      if (ev.type === "info") yield { part: { case: "info", value: { size: BigInt(ev.size), mode: ev.mode, offset: BigInt(ev.offset) } } };
      else if (ev.type === "data") yield { part: { case: "data", value: ev.data } };
      else yield { part: { case: "done", value: { bytes: BigInt(ev.bytes), sha256: ev.sha256 } } };
    }
  } catch (err) {
    if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason);
    throw err;
  } finally {
    release();
  }
}

/** ListDir (server streaming): batches of at most 1000 entries. */
import { ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ListDirRequest, ListDirResponseSchema } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { listDir as list } from "../../ssh/files/index.js";
import { useSandbox } from "../access.js";
import { requireSandboxId } from "../convert.js";
import type { ApiDeps } from "../deps.js";
import { noteSandbox } from "../rpc-log.js";
import { fileInfo } from "./convert.js";

export async function* listDir(deps: ApiDeps, req: ListDirRequest, ctx: HandlerContext): AsyncGenerator<MessageInitShape<typeof ListDirResponseSchema>> {
  const id = requireSandboxId(req.sandboxId);
  noteSandbox(ctx, id);
  const release = await useSandbox(deps, ctx, id);
  ctx.signal.addEventListener("abort", release, { once: true });
  try {
    for await (const batch of list(deps.registry, id, { path: req.path, depth: req.depth, signal: ctx.signal })) {
      yield { entries: batch.map(fileInfo) };
    }
  } catch (err) {
    if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason);
    throw err;
  } finally {
    release();
  }
}

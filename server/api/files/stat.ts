/** Stat: what a path in the sandbox is. */
import type { HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { StatRequest, StatResponseSchema } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { statPath } from "../../ssh/files/index.js";
import { useSandbox } from "../access.js";
import { requireSandboxId } from "../convert.js";
import type { ApiDeps } from "../deps.js";
import { noteSandbox } from "../rpc-log.js";
import { fileInfo } from "./convert.js";

export async function stat(deps: ApiDeps, req: StatRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof StatResponseSchema>> {
  const id = requireSandboxId(req.sandboxId);
  noteSandbox(ctx, id);
  const release = await useSandbox(deps, ctx, id);
  try {
    return { info: fileInfo(await statPath(deps.registry, id, { path: req.path, followSymlinks: req.followSymlinks, signal: ctx.signal })) };
  } finally {
    release();
  }
}

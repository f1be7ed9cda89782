import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { DestroySandboxRequest, DestroySandboxResponseSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { requireSandboxId } from "./convert.js";
import type { ApiDeps } from "./deps.js";
import { noteSandbox } from "./rpc-log.js";

/** Idempotent; the manager also closes the sandbox's SSH connections. */
export async function destroySandbox(deps: ApiDeps, req: DestroySandboxRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof DestroySandboxResponseSchema>> {
  noteSandbox(ctx, req.sandboxId);
  await deps.manager.destroy(requireSandboxId(req.sandboxId));
  return {};
}

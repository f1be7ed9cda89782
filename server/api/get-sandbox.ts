import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { GetSandboxRequest, GetSandboxResponseSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { requireSandboxId, sandboxToProto } from "./convert.js";
import type { ApiDeps } from "./deps.js";
import { noteSandbox } from "./rpc-log.js";
import { visibleSandbox } from "./access.js";

export async function getSandbox(deps: ApiDeps, req: GetSandboxRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof GetSandboxResponseSchema>> {
  noteSandbox(ctx, req.sandboxId);
  return { sandbox: sandboxToProto(await visibleSandbox(deps, ctx, requireSandboxId(req.sandboxId))) };
}

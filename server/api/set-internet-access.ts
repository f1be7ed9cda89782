import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { SetInternetAccessRequest, SetInternetAccessResponseSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { requireSandboxId, sandboxToProto } from "./convert.js";
import type { ApiDeps } from "./deps.js";
import { noteSandbox } from "./rpc-log.js";

export async function setInternetAccess(deps: ApiDeps, req: SetInternetAccessRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof SetInternetAccessResponseSchema>> {
  noteSandbox(ctx, req.sandboxId);
  return { sandbox: sandboxToProto(await deps.manager.setInternet(requireSandboxId(req.sandboxId), req.enabled)) };
}

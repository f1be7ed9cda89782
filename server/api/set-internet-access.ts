import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { SetInternetAccessRequest, SetInternetAccessResponseSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { requireSandboxId, sandboxToProto } from "./convert.js";
import type { ApiDeps } from "./deps.js";
import { noteSandbox } from "./rpc-log.js";
import { visibleSandbox } from "./access.js";

export async function setInternetAccess(deps: ApiDeps, req: SetInternetAccessRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof SetInternetAccessResponseSchema>> {
  noteSandbox(ctx, req.sandboxId);
  const id = requireSandboxId(req.sandboxId);
  await visibleSandbox(deps, ctx, id);
  return { sandbox: sandboxToProto(await deps.manager.setInternet(id, req.enabled)) };
}

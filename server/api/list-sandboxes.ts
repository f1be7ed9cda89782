import type { HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ListSandboxesRequest, ListSandboxesResponseSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { sandboxToProto } from "./convert.js";
import type { ApiDeps } from "./deps.js";
import { listedTenant } from "./access.js";

export function listSandboxes(deps: ApiDeps, req: ListSandboxesRequest, ctx: HandlerContext): MessageInitShape<typeof ListSandboxesResponseSchema> {
  const page = deps.manager.list({ selector: { ...req.labelSelector }, pageSize: req.pageSize, pageToken: req.pageToken, tenant: listedTenant(ctx) });
  return { sandboxes: page.sandboxes.map(sandboxToProto), nextPageToken: page.nextPageToken };
}

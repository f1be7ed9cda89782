/** MakeDir, Remove, Move: one SFTP session each, the lease pinned meanwhile. */
import type { HandlerContext } from "@connectrpc/connect";
import type { MakeDirRequest, MoveRequest, RemoveRequest } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { makeDir as mkdir, movePath, removePath } from "../../ssh/files/index.js";
import { useSandbox } from "../access.js";
import { requireSandboxId } from "../convert.js";
import type { ApiDeps } from "../deps.js";
import { noteSandbox } from "../rpc-log.js";

async function onSandbox(deps: ApiDeps, ctx: HandlerContext, sandboxId: string, fn: (id: string) => Promise<void>): Promise<Record<string, never>> {
  const id = requireSandboxId(sandboxId);
  noteSandbox(ctx, id);
  const release = await useSandbox(deps, ctx, id);
  try {
    await fn(id);
    return {};
  } finally {
    release();
  }
}

export function makeDir(deps: ApiDeps, req: MakeDirRequest, ctx: HandlerContext) {
  return onSandbox(deps, ctx, req.sandboxId, (id) => mkdir(deps.registry, id, { path: req.path, parents: req.parents, mode: req.mode, signal: ctx.signal }));
}

export function remove(deps: ApiDeps, req: RemoveRequest, ctx: HandlerContext) {
  return onSandbox(deps, ctx, req.sandboxId, (id) => removePath(deps.registry, id, { path: req.path, recursive: req.recursive, signal: ctx.signal }));
}

export function move(deps: ApiDeps, req: MoveRequest, ctx: HandlerContext) {
  return onSandbox(deps, ctx, req.sandboxId, (id) => movePath(deps.registry, id, { from: req.from, to: req.to, overwrite: req.overwrite, signal: ctx.signal }));
}

/**
 * Tenants in the API: a handler reaches a sandbox only through these, so
 * another tenant's sandbox answers exactly as an unknown id does (NOT_FOUND,
 * same message: its existence does not leak); admins see every tenant's.
 */
import type { HandlerContext } from "@connectrpc/connect";
import { callerOf, canSee } from "../auth/index.js";
import { notFound } from "../errors.js";
import type { SandboxView } from "../sandboxes/types.js";
import type { ApiDeps } from "./deps.js";

/** The sandbox, if the caller may see it; else not_found. */
export async function visibleSandbox(deps: ApiDeps, ctx: HandlerContext, id: string): Promise<SandboxView> {
  const view = await deps.manager.get(id);
  if (!canSee(callerOf(ctx), view.tenant)) throw notFound(`sandbox ${JSON.stringify(id)} not found`);
  return view;
}

/**
 * For RPCs that work inside a sandbox (Exec, files, commands): the sandbox
 * must be the caller's, live, and its lease stays pinned until the returned
 * (idempotent) release is called.
 */
export async function useSandbox(deps: ApiDeps, ctx: HandlerContext, id: string): Promise<() => void> {
  await visibleSandbox(deps, ctx, id);
  return deps.manager.use(id);
}

/** The tenant a list is limited to: the caller's, or undefined (all) for an admin. */
export function listedTenant(ctx: HandlerContext): string | undefined {
  const caller = callerOf(ctx);
  return caller.role === "admin" ? undefined : caller.tenant;
}

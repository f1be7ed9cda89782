/** ListSandboxes: label selector, creation order and opaque page tokens. */
import { invalidArgument } from "../errors.js";
import type { ListPage, ListRequest, SandboxView } from "./types.js";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

type Position = [createdAtMs: number, id: string];

const before = (a: Position, b: Position) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
const positionOf = (s: SandboxView): Position => [s.createdAt.getTime(), s.id];

/** The token is the position of the last item sent, so deletions between pages never skip anything. */
function encodeToken(p: Position): string {
  return Buffer.from(JSON.stringify(p)).toString("base64url");
}

function decodeToken(token: string): Position {
  try {
    const p = JSON.parse(Buffer.from(token, "base64url").toString()) as unknown;
    if (Array.isArray(p) && p.length === 2 && Number.isFinite(p[0]) && typeof p[1] === "string") return p as Position;
  } catch {
    // fall through
  }
  throw invalidArgument("page_token", "not a token from a previous ListSandboxes response");
}

export function listPage(all: Iterable<SandboxView>, req: ListRequest): ListPage {
  // Larger than the maximum is coerced down, as AIP-158 suggests.
  const size = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(req.pageSize, MAX_PAGE_SIZE);
  const after = req.pageToken ? decodeToken(req.pageToken) : undefined;
  const selector = Object.entries(req.selector);
  const matching = [...all]
    .filter((s) => selector.every(([k, v]) => s.labels[k] === v))
    .filter((s) => !after || before(after, positionOf(s)))
    .sort((a, b) => (before(positionOf(a), positionOf(b)) ? -1 : 1));
  const sandboxes = matching.slice(0, size);
  const last = sandboxes[sandboxes.length - 1];
  return { sandboxes, nextPageToken: matching.length > size && last ? encodeToken(positionOf(last)) : "" };
}

/** Wire helpers: API errors, request parameters (query + form/JSON body), answers. */
import type { IncomingMessage, ServerResponse } from "node:http";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Record<string, string>,
  ) {
    super(message);
  }
}

/** A handler's `die`: 500 with the message as reason phrase. */
export const die = (message: string) => new ApiError(500, message);
export const paramError = (errors: Record<string, string>) => new ApiError(400, "Parameter verification failed.", errors);

export type Raw = Record<string, unknown>;

export interface Parsed {
  params: Raw;
  /** True when the body was a form: booleans must then be "1"/"0". */
  form: boolean;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Query string merged over the body (the query wins). GET/DELETE with a body → 501. */
export async function parseParams(req: IncomingMessage, url: URL): Promise<Parsed> {
  const body = await readBody(req);
  const method = req.method ?? "GET";
  const query = Object.fromEntries(url.searchParams);
  if (method === "GET" || method === "DELETE") {
    if (body.length > 0) throw new ApiError(501, `Unexpected content for method '${method}'`);
    return { params: query, form: true };
  }
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  let fromBody: Raw = {};
  let form = true;
  if (body.length > 0 && type === "application/json") {
    try {
      const v = JSON.parse(body.toString("utf8"));
      if (v && typeof v === "object" && !Array.isArray(v)) fromBody = v as Raw;
      else throw new Error("not an object");
    } catch {
      throw new ApiError(400, "malformed JSON body");
    }
    form = false;
  } else if (body.length > 0) {
    fromBody = Object.fromEntries(new URLSearchParams(body.toString("utf8")));
  }
  return { params: { ...fromBody, ...query }, form };
}

const JSON_TYPE = "application/json;charset=UTF-8";

export function sendData(res: ServerResponse, data: unknown, extra: Raw = {}): void {
  const body = JSON.stringify({ data, ...extra });
  res.writeHead(200, "OK", { "Content-Type": JSON_TYPE, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

/** First line of the message as reason phrase; connection closed after every answer ≥400. */
export function sendError(res: ServerResponse, e: ApiError, emptyBody = false): void {
  const reason = e.message.split("\n")[0]!.replace(/[^\t\x20-\x7e]/g, "?");
  const payload: Raw = { data: null };
  if (e.errors) payload.errors = e.errors;
  if (!emptyBody) payload.message = `${e.message}\n`;
  const body = emptyBody ? "" : JSON.stringify(payload);
  res.shouldKeepAlive = false;
  res.writeHead(e.status, reason, {
    "Content-Type": JSON_TYPE, "Content-Length": Buffer.byteLength(body), Connection: "close",
  });
  res.end(body);
}

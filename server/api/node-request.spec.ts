/**
 * requestBodyCutOff() against real node HTTP/2 and HTTP/1.1 servers and
 * clients: at the moment a handler sees its request body end, it must say
 * whether the client ended the stream (END_STREAM, a complete HTTP/1.1 body)
 * or cut it (RST_STREAM with any code, a dropped connection). No timing is
 * involved: the answer is read when the body's end is seen.
 */
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createContextValues } from "@connectrpc/connect";
import { requestBodyCutOff, withNodeRequest } from "./node-request.js";

type Seen = { bytes: number; cutOff: boolean | "error" };

const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

/** A server whose handler reads the whole body and records requestBodyCutOff() right when it ends. */
function recorder(): { seen: Promise<Seen>; handler: (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void } {
  let done!: (s: Seen) => void;
  const seen = new Promise<Seen>((r) => (done = r));
  const handler = async (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    // What connect-node does with sandboxd's contextValues hook.
    const ctx = { values: withNodeRequest(createContextValues(), req) };
    let bytes = 0;
    try {
      for await (const chunk of req) bytes += (chunk as Buffer).length;
    } catch {
      return done({ bytes, cutOff: "error" });
    }
    done({ bytes, cutOff: requestBodyCutOff(ctx) });
    res.end();
  };
  return { seen, handler };
}

async function h2Server(handler: ReturnType<typeof recorder>["handler"]): Promise<string> {
  const server = http2.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  closers.push(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

type Cut = "end" | "cancel" | "no_error" | "internal_error" | "drop";

async function h2Send(url: string, cut: Cut, settle: boolean): Promise<void> {
  const session = http2.connect(url);
  session.on("error", () => {});
  closers.push(() => session.destroy());
  const abort = new AbortController();
  const req = session.request({ ":method": "POST", ":path": "/" }, { signal: abort.signal });
  req.on("error", () => {});
  req.resume();
  await new Promise<void>((r) => req.write(Buffer.alloc(100_000, 1), () => r()));
  if (settle) await new Promise((r) => setTimeout(r, 30));
  if (cut === "end") req.end();
  else if (cut === "cancel") abort.abort();
  else if (cut === "internal_error") req.destroy(new Error("gave up"));
  else if (cut === "no_error") req.destroy();
  else session.destroy();
}

describe("requestBodyCutOff over HTTP/2", () => {
  for (const settle of [true, false]) {
    const when = settle ? "after the body reached the server" : "in the same tick as the last write";
    it(`a clean END_STREAM is not a cut (${when})`, async () => {
      const r = recorder();
      await h2Send(await h2Server(r.handler), "end", settle);
      expect(await r.seen).toEqual({ bytes: 100_000, cutOff: false });
    });
    for (const cut of ["cancel", "no_error", "internal_error", "drop"] as const) {
      it(`${cut} is a cut, never a clean end (${when})`, async () => {
        const r = recorder();
        await h2Send(await h2Server(r.handler), cut, settle);
        const seen = await r.seen;
        // Node either errors the body or ends it like a clean one (a reset with
        // NO_ERROR sent in the same tick as the data does); then the stream must say cut.
        expect(seen.cutOff).not.toBe(false);
      });
    }
  }
});

describe("requestBodyCutOff over HTTP/1.1", () => {
  async function h1(cut: "end" | "drop"): Promise<Seen> {
    const r = recorder();
    const server = http.createServer(r.handler);
    await new Promise<void>((res) => server.listen(0, "127.0.0.1", () => res()));
    closers.push(() => server.close());
    const req = http.request({ host: "127.0.0.1", port: (server.address() as AddressInfo).port, method: "POST", path: "/", headers: { "content-length": "200000" } });
    req.on("error", () => {});
    req.write(Buffer.alloc(100_000, 1));
    if (cut === "end") req.end(Buffer.alloc(100_000, 2));
    else {
      await new Promise((res) => setTimeout(res, 30));
      req.destroy();
    }
    return r.seen;
  }

  it("a complete body is not a cut", async () => {
    expect(await h1("end")).toEqual({ bytes: 200_000, cutOff: false });
  });

  it("a dropped connection is a cut", async () => {
    expect((await h1("drop")).cutOff).not.toBe(false);
  });

  it("without the request in the RPC's values nothing is known: not a cut", () => {
    expect(requestBodyCutOff({ values: createContextValues() })).toBe(false);
  });
});

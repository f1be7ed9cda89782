import { afterEach, describe, expect, it } from "vitest";
import http2 from "node:http2";
import net from "node:net";
import type { SessionPolicy } from "./session-policy.js";
import { listen, type Handler, type Listener } from "./transport.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Answers after ?ms=N milliseconds. */
const slow: Handler = (req, res) => {
  const ms = Number(new URL(req.url ?? "/", "http://x").searchParams.get("ms") ?? 0);
  setTimeout(() => res.end("done"), ms);
};

function get(session: http2.ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ":path": path });
    let body = "";
    let ended = false;
    req.setEncoding("utf8");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => (ended = true));
    req.on("error", reject);
    // A stream cut by a destroyed connection closes without its answer.
    req.on("close", () => (ended && body === "done" ? resolve(body) : reject(new Error(`stream closed early (rst ${req.rstCode})`))));
    req.end();
  });
}

describe("connection policy: keepalive pings and maximum connection age", () => {
  let server: Listener | undefined;
  const clients: Array<{ close(): void }> = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    server?.destroyAll();
    server?.stopAccepting();
  });
  const start = async (policy: Partial<SessionPolicy>) => {
    server = await listen(slow, "127.0.0.1", 0, {
      sessions: { keepaliveIntervalMs: 0, keepaliveTimeoutMs: 1000, maxConnectionAgeMs: 0, maxConnectionAgeGraceMs: 0, ...policy },
    });
    return `127.0.0.1:${server.port}`;
  };

  it("closes a connection whose peer stops answering PINGs, and keeps one that answers", async () => {
    const address = await start({ keepaliveIntervalMs: 200, keepaliveTimeoutMs: 300 });
    // A live HTTP/2 client acknowledges PINGs on its own.
    const live = http2.connect(`http://${address}`);
    clients.push(live);
    expect(await get(live, "/")).toBe("done");
    // A dead peer: sends the preface and SETTINGS, then never answers again (it reads, to see the close).
    const dead = net.connect(server!.port, "127.0.0.1");
    clients.push({ close: () => dead.destroy() });
    await new Promise<void>((r) => dead.once("connect", () => r()));
    dead.resume();
    dead.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
    const closedAfter = await new Promise<number>((resolve) => {
      const t0 = Date.now();
      dead.once("close", () => resolve(Date.now() - t0));
    });
    expect(closedAfter).toBeGreaterThanOrEqual(400); // one interval + the timeout, at least
    await sleep(300);
    expect(live.closed || live.destroyed).toBe(false);
    expect(await get(live, "/")).toBe("done");
  });

  it("past the maximum age: GOAWAY, running streams finish within the grace, new requests go to a new connection", async () => {
    const address = await start({ maxConnectionAgeMs: 300, maxConnectionAgeGraceMs: 5000 });
    const first = http2.connect(`http://${address}`);
    clients.push(first);
    const goaway = new Promise<void>((r) => first.once("goaway", () => r()));
    const long = get(first, "/?ms=2000"); // started before the GOAWAY, outlives it
    await goaway;
    expect(await long).toBe("done");
    await new Promise<void>((r) => (first.closed ? r() : first.once("close", () => r())));
    const second = http2.connect(`http://${address}`);
    clients.push(second);
    expect(await get(second, "/")).toBe("done");
  });

  it("cuts streams still running when the grace ends", async () => {
    const address = await start({ maxConnectionAgeMs: 200, maxConnectionAgeGraceMs: 300 });
    const client = http2.connect(`http://${address}`);
    clients.push(client);
    client.on("error", () => {});
    const t0 = Date.now();
    await expect(get(client, "/?ms=10000")).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(3000); // age (≤ 220 ms) + grace (300 ms), not the 10 s
  });
});

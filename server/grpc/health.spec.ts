import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health } from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";
import { ServingStatus } from "./health.js";
import { grpcurl, startTestServer } from "./test-server.js";
import type { TestServer } from "./test-server.js";

let srv: TestServer;
let client: ReturnType<typeof createClient<typeof Health>>;
beforeAll(async () => {
  srv = await startTestServer();
  client = createClient(Health, createGrpcTransport({ baseUrl: srv.baseUrl }));
});
afterAll(async () => {
  await srv.close();
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

describe("grpc.health.v1.Health", () => {
  it("Check answers overall and per service, NOT_FOUND for unknown", async () => {
    srv.health.setServing(true);
    expect((await client.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    expect((await client.check({ service: "sandbox.v1.SandboxService" })).status).toBe(ServingStatus.SERVING);
    const err = await client.check({ service: "nope.Service" }).catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.NotFound);
  });

  it("Check via the real grpcurl follows setServing", async () => {
    srv.health.setServing(false);
    const body = JSON.stringify({ service: "sandbox.v1.SandboxService" });
    expect(JSON.parse(await grpcurl(["-d", body], srv.address, "grpc.health.v1.Health/Check"))).toEqual({
      status: "NOT_SERVING",
    });
    srv.health.setServing(true);
    expect(JSON.parse(await grpcurl([], srv.address, "grpc.health.v1.Health/Check"))).toEqual({ status: "SERVING" });
  });

  it("List returns every service", async () => {
    const res = await client.list({});
    expect(Object.keys(res.statuses).sort()).toEqual(["", "sandbox.v1.SandboxService"]);
  });

  it("Watch sends the current status, then changes, and releases on cancel", async () => {
    srv.health.setServing(true);
    const abort = new AbortController();
    const seen: ServingStatus[] = [];
    const stream = client.watch({ service: "sandbox.v1.SandboxService" }, { signal: abort.signal });
    const done = (async () => {
      for await (const r of stream) seen.push(r.status);
    })().catch((e: unknown) => ConnectError.from(e).code);

    await until(() => seen.length === 1);
    expect(seen).toEqual([ServingStatus.SERVING]);
    expect(srv.health.watcherCount()).toBe(1);

    srv.health.set("sandbox.v1.SandboxService", ServingStatus.NOT_SERVING);
    await until(() => seen.length === 2);
    srv.health.setServing(true);
    await until(() => seen.length === 3);
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING, ServingStatus.SERVING]);

    abort.abort();
    expect(await done).toBe(Code.Canceled);
    // The server's abort listener drops the subscription.
    await until(() => srv.health.watcherCount() === 0);
  });

  it("Watch on an unknown service reports SERVICE_UNKNOWN, then its arrival", async () => {
    const abort = new AbortController();
    const seen: ServingStatus[] = [];
    const done = (async () => {
      for await (const r of client.watch({ service: "later.Service" }, { signal: abort.signal })) seen.push(r.status);
    })().catch(() => undefined);
    await until(() => seen.length === 1);
    expect(seen[0]).toBe(ServingStatus.SERVICE_UNKNOWN);
    srv.health.set("later.Service", ServingStatus.SERVING);
    await until(() => seen.length === 2);
    expect(seen[1]).toBe(ServingStatus.SERVING);
    abort.abort();
    await done;
    await until(() => srv.health.watcherCount() === 0);
  });

  it("close() sends a pending status, then ends every Watch with UNAVAILABLE and refuses new ones; Check still answers", async () => {
    srv.health.setServing(true);
    const seen: ServingStatus[] = [];
    const done = (async () => {
      for await (const r of client.watch({ service: "" })) seen.push(r.status);
    })().then(() => "OK", (e: unknown) => Code[ConnectError.from(e).code]);
    await until(() => seen.length === 1);
    srv.health.setServing(false);
    srv.health.close(); // right after: the NOT_SERVING must still reach the watcher
    expect(await done).toBe("Unavailable");
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    const again = await (async () => {
      for await (const _ of client.watch({ service: "" })) void _;
    })().then(() => "OK", (e: unknown) => Code[ConnectError.from(e).code]);
    // A new watcher learns the status once, then the end.
    expect(again).toBe("Unavailable");
    expect((await client.check({})).status).toBe(ServingStatus.NOT_SERVING);
    await until(() => srv.health.watcherCount() === 0);
  });
});

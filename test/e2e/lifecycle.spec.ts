/**
 * Control-plane RPCs end to end through a running server, over gRPC,
 * Connect/HTTP2, Connect/HTTP1.1 and @grpc/grpc-js: create/get/list/destroy,
 * keepalive, internet toggle, request-id idempotency, error codes, health.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Sandbox_State, type Sandbox } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";
import { collectExec, PROVIDERS, startE2E, type E2E, type LogLines } from "./harness.js";
import { grpcJsClient, unary } from "./grpc-js-client.js";

let e: E2E;
const logs: LogLines = [];
const made: string[] = [];

async function expectCode(p: Promise<unknown>, code: Code, message?: RegExp): Promise<ConnectError> {
  const err = await p.then(() => undefined, (x: unknown) => x);
  expect(err, "expected the call to fail").toBeInstanceOf(ConnectError);
  const ce = err as ConnectError;
  expect(Code[ce.code]).toBe(Code[code]);
  if (message) expect(ce.rawMessage).toMatch(message);
  return ce;
}

describe.each(PROVIDERS)("sandbox lifecycle over every transport (%s)", (provider) => {
  beforeAll(async () => {
    e = await startE2E(0, {}, provider, logs);
  });
  afterAll(async () => {
    await e?.stop();
  });

  it("sets a sandbox's egress allowlist (Proxmox: rules in the container's firewall)", async () => {
    const { sandbox } = await e.grpc.createSandbox({ labels: { suite: "life", n: "egress" } });
    const id = sandbox!.id;
    made.push(id);
    expect(sandbox!.egressAllowlist).toEqual([]);
    const set = (await e.connect1.setEgressAllowlist({ sandboxId: id, entries: ["10.1.2.3:5432", "192.168.7.0/24"] })).sandbox!;
    expect(set.egressAllowlist).toHaveLength(2);
    expect(set.egressAllowlist.join(" ")).toMatch(/10\.1\.2\.3.*5432/);
    expect((await e.grpc.getSandbox({ sandboxId: id })).sandbox!.egressAllowlist).toEqual(set.egressAllowlist);
    await expectCode(e.grpc.setEgressAllowlist({ sandboxId: id, entries: ["not-an-address"] }), Code.InvalidArgument, /^entries/);
    await expectCode(e.grpc.setEgressAllowlist({ sandboxId: id, entries: ["127.0.0.1"] }), Code.InvalidArgument, /^entries/);
    await expectCode(e.grpc.setEgressAllowlist({ sandboxId: id, entries: Array.from({ length: 65 }, (_, i) => `10.0.${i}.1`) }), Code.InvalidArgument, /64/);
    await expectCode(e.grpc.setEgressAllowlist({ sandboxId: "sbx-nope", entries: [] }), Code.NotFound);
    expect((await e.grpc.setEgressAllowlist({ sandboxId: id, entries: [] })).sandbox!.egressAllowlist).toEqual([]);
  });

  it("health says SERVING", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: e.baseUrl }));
    expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await health.check({ service: "sandbox.v1.SandboxService" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  it("creates, gets, keeps alive, toggles internet and destroys (gRPC)", async () => {
    const { sandbox } = await e.grpc.createSandbox({ labels: { suite: "life", n: "1" }, resources: { cores: 1 } });
    const s = sandbox!;
    made.push(s.id);
    expect(s.state).toBe(Sandbox_State.RUNNING);
    // Both providers report the disk the sandbox really has (Proxmox: the clone grown to it).
    expect(s.resources).toMatchObject({ cores: 1, memoryMib: 256, diskGib: 1 });
    expect(s.provider).toBe(provider);
    expect(s.internetAccess).toBe(false);
    const got = (await e.connect2.getSandbox({ sandboxId: s.id })).sandbox!;
    expect(got.labels).toEqual({ suite: "life", n: "1" });

    const before = timestampDate(got.leaseExpiresAt!).getTime();
    const ka = await e.connect1.keepAlive({ sandboxId: s.id, leaseTtl: { seconds: 3600n } });
    expect(timestampDate(ka.leaseExpiresAt!).getTime()).toBeGreaterThan(before);
    await expectCode(e.grpc.keepAlive({ sandboxId: s.id, leaseTtl: { seconds: 10n ** 7n } }), Code.InvalidArgument, /lease_ttl/);

    // Internet off refuses at once (a reset), it does not drop: on Proxmox the container firewall's policy_out is REJECT.
    const egress = () => e.emulator!.containers().find((ct) => String(ct.conf.description ?? "").includes(s.id))!.firewall.policy_out;
    if (provider === "proxmox") expect(egress()).toBe("REJECT");
    const on = await e.grpc.setInternetAccess({ sandboxId: s.id, enabled: true });
    expect(on.sandbox!.internetAccess).toBe(true);
    expect((await e.grpc.getSandbox({ sandboxId: s.id })).sandbox!.internetAccess).toBe(true);
    if (provider === "proxmox") expect(egress()).toBe("ACCEPT");
    await e.grpc.setInternetAccess({ sandboxId: s.id, enabled: false });
    if (provider === "proxmox") expect(egress()).toBe("REJECT");
    const blocked = await collectExec(e.grpc.exec({ sandboxId: s.id, command: { case: "shell",
      value: "gw=$(ip route | awk '/^default/ {print $3}'); timeout 5 bash -c \"exec 3<>/dev/tcp/$gw/22\" 2>&1; echo rc=$?" } }));
    expect(blocked.stdout).toMatch(/Connection refused\nrc=1\n$/); // the host's sshd: refused at once, not a timeout (rc=124)

    await e.grpc.destroySandbox({ sandboxId: s.id });
    await e.connect1.destroySandbox({ sandboxId: s.id }); // idempotent
    await expectCode(e.grpc.getSandbox({ sandboxId: s.id }), Code.NotFound);
  });

  it("lists by label selector, in creation order, a page at a time", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await e.connect2.createSandbox({ labels: { suite: "list", i: String(i) } })).sandbox!.id);
    made.push(...ids);
    const all = await e.grpc.listSandboxes({ labelSelector: { suite: "list" } });
    expect(all.sandboxes.map((s) => s.id)).toEqual(ids);
    expect(all.nextPageToken).toBe("");
    const seen: Sandbox[] = [];
    let token = "";
    do {
      const page = await e.connect1.listSandboxes({ labelSelector: { suite: "list" }, pageSize: 2, pageToken: token });
      expect(page.sandboxes.length).toBeLessThanOrEqual(2);
      seen.push(...page.sandboxes);
      token = page.nextPageToken;
    } while (token);
    expect(seen.map((s) => s.id)).toEqual(ids);
    expect((await e.grpc.listSandboxes({ labelSelector: { suite: "list", i: "1" } })).sandboxes.map((s) => s.id)).toEqual([ids[1]]);
    await expectCode(e.grpc.listSandboxes({ pageToken: "garbage!" }), Code.InvalidArgument, /page_token/);
    for (const id of ids) await e.grpc.destroySandbox({ sandboxId: id });
  });

  it("makes one sandbox per request_id, also for concurrent retries", async () => {
    const req = { requestId: `rid-${Date.now()}`, labels: { suite: "idem" } };
    const [a, b, c] = await Promise.all([e.grpc.createSandbox(req), e.connect2.createSandbox(req), e.connect1.createSandbox(req)]);
    made.push(a.sandbox!.id);
    expect(b.sandbox!.id).toBe(a.sandbox!.id);
    expect(c.sandbox!.id).toBe(a.sandbox!.id);
    expect((await e.grpc.createSandbox(req)).sandbox!.id).toBe(a.sandbox!.id);
    expect((await e.grpc.listSandboxes({ labelSelector: { suite: "idem" } })).sandboxes).toHaveLength(1);
    await expectCode(e.grpc.createSandbox({ ...req, labels: { suite: "other" } }), Code.InvalidArgument, /request_id/);
    await e.grpc.destroySandbox({ sandboxId: a.sandbox!.id });
  });

  it("maps errors to codes and names the field", async () => {
    await expectCode(e.grpc.getSandbox({ sandboxId: "sbx-nope" }), Code.NotFound);
    await expectCode(e.connect1.keepAlive({ sandboxId: "sbx-nope" }), Code.NotFound);
    await expectCode(e.connect2.setInternetAccess({ sandboxId: "sbx-nope", enabled: true }), Code.NotFound);
    await expectCode(e.grpc.getSandbox({ sandboxId: "" }), Code.InvalidArgument, /sandbox_id/);
    await expectCode(e.grpc.createSandbox({ resources: { memoryMib: 1 } }), Code.InvalidArgument, /memory_mib/);
    await expectCode(e.grpc.createSandbox({ resources: { cores: 10_000 } }), Code.InvalidArgument, /cores/);
    await expectCode(e.grpc.createSandbox({ leaseTtl: { seconds: 10n ** 7n } }), Code.InvalidArgument, /lease_ttl/);
    await e.grpc.destroySandbox({ sandboxId: "sbx-neverexisted" }); // idempotent for unknown ids too
  });

  it("rejects invalid label keys", async () => {
    const p = e.grpc.createSandbox({ labels: { "-bad": "x" } });
    p.then((r) => made.push(r.sandbox!.id), () => {});
    await expectCode(p, Code.InvalidArgument, /labels/);
  });

  it("serves @grpc/grpc-js, the reference implementation", async () => {
    const client = grpcJsClient(e.server.address);
    try {
      const created = await unary<{ sandbox: Sandbox }>(client, "createSandbox", { labels: { suite: "grpcjs" } });
      made.push(created.sandbox.id);
      const got = await unary<{ sandbox: Sandbox }>(client, "getSandbox", { sandboxId: created.sandbox.id });
      expect(got.sandbox.labels).toEqual({ suite: "grpcjs" });
      const events: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const call = client.exec!({ sandboxId: created.sandbox.id, command: { case: "shell", value: "echo hi" } });
        call.on("data", (m: { event: { case: string; value: unknown } }) => {
          events.push(m.event.case);
          if (m.event.case === "stdout") expect(Buffer.from(m.event.value as Uint8Array).toString()).toBe("hi\n");
        });
        call.on("error", reject);
        call.on("end", resolve);
      });
      expect(events).toEqual(["started", "stdout", "exited"]);
      const err = await unary(client, "getSandbox", { sandboxId: "sbx-nope" }).catch((x: { code: number }) => x);
      expect((err as { code: number }).code).toBe(GrpcStatus.NOT_FOUND);
      await unary(client, "destroySandbox", { sandboxId: created.sandbox.id });
    } finally {
      client.close();
    }
  });

  it("answers Connect JSON over plain HTTP/1.1 (curl without prior knowledge)", async () => {
    const res = await fetch(`${e.baseUrl}/sandbox.v1.SandboxService/GetSandbox`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "e2e-req-1", traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" },
      body: JSON.stringify({ sandboxId: "sbx-nope" }),
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: "not_found" });
    expect(res.headers.get("x-request-id")).toBe("e2e-req-1");
    // Tracing is off here: the RPC's log line still names the caller's trace.
    expect(logs.find((l) => l.requestId === "e2e-req-1")).toMatchObject({ rpc: "GetSandbox", code: "NotFound", trace_id: "4bf92f3577b34da6a3ce929d0e0e4736" });
  });

  afterAll(async () => {
    for (const id of made) await e?.grpc.destroySandbox({ sandboxId: id }).catch(() => {});
  });
});

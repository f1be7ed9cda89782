/**
 * Issue 15: what an operator sees. sandboxd runs as a process (Proxmox
 * provider on the PVE emulator, whose containers are real local sandboxes)
 * with OTLP export to a receiver this test runs. A scripted session (create,
 * exec, upload, keepalive, destroy, a Proxmox outage) must move the metrics
 * as expected; a caller's traceparent must come back as the same trace id in
 * the log lines and in the exported spans. A second process exports
 * protobuf (the OTLP default) and shows /readyz flipping on SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash, randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";
import { collectExec, e2eEmulatorInstance } from "../e2e/harness.js";
import { EMULATOR_TIMING, eventually, proxmoxEnv, sandboxd, sleep, type Sandboxd } from "../crash/harness.js";
import { startEmulator, type Emulator } from "../pve-emulator/index.js";
import { adminAddressOf, scrape, scrapeText, total, type Sample } from "../fixtures/metrics.js";
import { startOtlpReceiver, type OtlpReceiver } from "../fixtures/otlp-receiver.js";

const TRACE_ID = randomBytes(16).toString("hex");
const PARENT_SPAN = randomBytes(8).toString("hex");
const traceparent = (trace = TRACE_ID, span = PARENT_SPAN) => `00-${trace}-${span}-01`;
const EXPORT_FAST = { OTEL_BSP_SCHEDULE_DELAY: "100", OTEL_SERVICE_NAME: "sandboxd-test" };

describe("metrics and traces (sandboxd process on the PVE emulator)", () => {
  let emulator: Emulator;
  let receiver: OtlpReceiver;
  let server: Sandboxd;
  let admin: string;

  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, timing: { ...EMULATOR_TIMING, cloneMs: 200 }, ...e2eEmulatorInstance(6) });
    receiver = await startOtlpReceiver();
    server = await sandboxd(proxmoxEnv(emulator.connection, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", ...EXPORT_FAST,
    }));
    admin = adminAddressOf(server.logs());
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
    const refused = emulator?.rejectedRequests() ?? [];
    await emulator?.close();
    expect(refused).toEqual([]);
  }, 60_000);

  it("a scripted session moves the RPC, sandbox, lease, Proxmox, SSH and transport metrics; no label names a sandbox or path", async () => {
    const before = await scrape(admin);
    const delta = (after: Sample[], name: string, labels: Record<string, string> = {}) => total(after, name, labels) - total(before, name, labels);
    const rpc = (method: string) => ({ grpc_service: "sandbox.v1.SandboxService", grpc_method: method });

    const { sandbox } = await server.client.createSandbox({});
    const id = sandbox!.id;
    const run = await collectExec(server.client.exec({ sandboxId: id, command: { case: "shell", value: "echo out; echo err >&2; exit 3" } }));
    expect(run.exited?.exitCode).toBe(3);
    const data = randomBytes(3 << 20);
    const path = `/tmp/secret-name-${randomBytes(4).toString("hex")}.bin`;
    async function* parts() {
      yield { part: { case: "header" as const, value: { sandboxId: id, path, expectedSha256: createHash("sha256").update(data).digest("hex") } } };
      for (let i = 0; i < data.length; i += 1 << 20) yield { part: { case: "data" as const, value: data.subarray(i, i + (1 << 20)) } };
    }
    expect((await server.client.upload(parts())).bytesWritten).toBe(BigInt(data.length));
    await server.client.keepAlive({ sandboxId: id });
    await expect(server.client.getSandbox({ sandboxId: "sbx-does-not-exist" })).rejects.toThrow(/not found/);

    const running = await scrape(admin);
    expect(total(running, "sandboxd_sandboxes", { provider: "proxmox", state: "running" })).toBe(1);
    expect(total(running, "sandboxd_ssh_connections")).toBeGreaterThanOrEqual(1);

    // Proxmox answers 500 to everything for a moment: the periodic sync's calls fail and are retried.
    emulator.setFaults({ errorRate: 1, errorStatus: 500 });
    await sleep(1500);
    emulator.setFaults({}, true);
    await server.client.destroySandbox({ sandboxId: id });

    const text = await scrapeText(admin);
    expect(text).not.toContain(id);
    expect(text).not.toContain(path);
    const after = await scrape(admin);
    expect(delta(after, "grpc_server_started_total", { ...rpc("CreateSandbox"), grpc_type: "unary" })).toBe(1);
    expect(delta(after, "grpc_server_handled_total", { ...rpc("CreateSandbox"), grpc_code: "OK" })).toBe(1);
    expect(delta(after, "grpc_server_handled_total", { ...rpc("Exec"), grpc_type: "server_stream", grpc_code: "OK" })).toBe(1);
    expect(delta(after, "grpc_server_msg_sent_total", rpc("Exec"))).toBeGreaterThanOrEqual(4); // started, stdout, stderr, exited
    expect(delta(after, "grpc_server_msg_received_total", { ...rpc("Upload"), grpc_type: "client_stream" })).toBe(4); // header + 3 chunks
    expect(delta(after, "grpc_server_handled_total", { ...rpc("GetSandbox"), grpc_code: "NotFound" })).toBe(1);
    expect(delta(after, "grpc_server_handling_seconds_count", rpc("DestroySandbox"))).toBe(1);
    expect(total(after, "sandboxd_grpc_streams_in_flight", rpc("Exec"))).toBe(0);
    expect(delta(after, "sandboxd_sandbox_create_seconds_count", { provider: "proxmox" })).toBe(1);
    expect(delta(after, "sandboxd_sandbox_destroys_total", { provider: "proxmox", reason: "requested" })).toBe(1);
    expect(total(after, "sandboxd_sandboxes", { provider: "proxmox", state: "running" })).toBe(0);
    expect(delta(after, "sandboxd_lease_renewals_total")).toBeGreaterThanOrEqual(1);
    expect(delta(after, "sandboxd_exec_duration_seconds_count", { exit_reason: "exit_nonzero" })).toBe(1);
    expect(delta(after, "sandboxd_ssh_handshakes_total", { result: "ok" })).toBeGreaterThanOrEqual(1);
    expect(delta(after, "sandboxd_ssh_channel_queue_wait_seconds_count")).toBeGreaterThanOrEqual(2); // exec + sftp
    expect(delta(after, "sandboxd_proxmox_api_requests_total", { method: "POST", status: "200" })).toBeGreaterThanOrEqual(1);
    expect(delta(after, "sandboxd_proxmox_api_requests_total", { status: "500" })).toBeGreaterThanOrEqual(1);
    expect(delta(after, "sandboxd_proxmox_api_retries_total", { kind: "transient" })).toBeGreaterThanOrEqual(1);
    expect(delta(after, "sandboxd_proxmox_task_seconds_count", { result: "ok" })).toBeGreaterThanOrEqual(2); // clone, start, destroy…
    expect(delta(after, "sandboxd_transport_received_bytes_total")).toBeGreaterThan(data.length);
    expect(delta(after, "sandboxd_transport_sent_bytes_total")).toBeGreaterThan(0);
    expect(total(after, "nodejs_eventloop_lag_seconds")).toBeGreaterThanOrEqual(0);
    expect(after.some((s) => s.name === "process_resident_memory_bytes")).toBe(true);
    // Every Proxmox path label is a template.
    for (const s of after.filter((x) => x.name === "sandboxd_proxmox_api_requests_total")) expect(s.labels.path).not.toMatch(/\d{3,}|UPID/);
  }, 120_000);

  it("continues the caller's traceparent: the same trace id in the log lines and the exported spans, with child spans", async () => {
    const { sandbox } = await server.client.createSandbox({});
    const id = sandbox!.id;
    await collectExec(server.client.exec({ sandboxId: id, command: { case: "shell", value: "true" } }, { headers: { traceparent: traceparent() } }));
    await server.client.destroySandbox({ sandboxId: id });

    // The log line of the RPC carries the trace id.
    await eventually("a log line of the Exec with the caller's trace id", 5000, () =>
      server.logs().split("\n").some((l) => l.includes(`"trace_id":"${TRACE_ID}"`) && l.includes('"rpc":"Exec"')));
    // The exported server span continues the caller's span; SSH work is its child.
    await eventually("the Exec span and its children exported", 10_000, () => receiver.spans().some((s) => s.traceId === TRACE_ID && s.name.startsWith("ssh.channel")));
    const spans = receiver.spans().filter((s) => s.traceId === TRACE_ID);
    const rpcSpan = spans.find((s) => s.name === "sandbox.v1.SandboxService/Exec")!;
    expect(rpcSpan).toBeDefined();
    expect(rpcSpan.parentSpanId).toBe(PARENT_SPAN);
    expect(rpcSpan.kind).toBe(2); // SERVER
    expect(rpcSpan.attributes).toMatchObject({ "rpc.system": "grpc", "rpc.method": "Exec", "rpc.grpc.status_code": 0 });
    expect(rpcSpan.service).toBe("sandboxd-test");
    const channel = spans.find((s) => s.name === "ssh.channel exec")!;
    expect(channel).toBeDefined();
    // A create without a traceparent starts its own trace, with the Proxmox calls inside.
    await eventually("a CreateSandbox trace with Proxmox calls", 10_000, () => {
      const creates = receiver.spans().filter((s) => s.name === "sandbox.v1.SandboxService/CreateSandbox");
      return creates.some((c) => receiver.spans().some((s) => s.traceId === c.traceId && s.name.startsWith("proxmox POST ") && s.kind === 3));
    });
    // A failed RPC's span says so.
    await expect(server.client.getSandbox({ sandboxId: "sbx-nope" }, { headers: { traceparent: traceparent(TRACE_ID, "00000000000000aa") } })).rejects.toThrow();
    await eventually("the failed GetSandbox span", 10_000, () =>
      receiver.spans().some((s) => s.traceId === TRACE_ID && s.name.endsWith("/GetSandbox") && s.status?.code === 2 && s.attributes["rpc.grpc.status_code"] === 5));
  }, 120_000);

  it("protobuf export (the OTLP default), and /readyz goes 503 on SIGTERM while /healthz stays 200", async () => {
    const second = await sandboxd(proxmoxEnv(emulator.connection, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, ...EXPORT_FAST, SANDBOXD_DRAIN_DELAY: "3s" }));
    try {
      const secondAdmin = adminAddressOf(second.logs());
      expect((await fetch(`http://${secondAdmin}/readyz`)).status).toBe(200);
      const trace = randomBytes(16).toString("hex");
      const health = createClient(Health, createGrpcTransport({ baseUrl: `http://${second.address}` }));
      await health.check({ service: "" }, { headers: { traceparent: traceparent(trace) } });
      await eventually("a protobuf export holding the trace id", 10_000, () =>
        receiver.protobufBodies().some((b) => b.includes(Buffer.from(trace, "hex"))));
      expect(receiver.requests().some((r) => r.path === "/v1/traces" && r.contentType === "application/x-protobuf")).toBe(true);

      second.process.kill("SIGTERM");
      await eventually("/readyz 503 during the drain delay", 2500, async () => (await fetch(`http://${secondAdmin}/readyz`)).status === 503);
      expect((await fetch(`http://${secondAdmin}/healthz`)).status).toBe(200);
      const code = second.process.exitCode ?? (await new Promise<number | null>((r) => second.process.once("exit", (c) => r(c))));
      expect(code).toBe(0); // drained and stopped cleanly
    } finally {
      await second.stop();
    }
  }, 120_000);
});

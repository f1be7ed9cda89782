/**
 * The server as users meet it: started as scripts/start.sh starts it, driven by the real
 * grpcurl (reflection, no .proto files), curl on the Connect protocol's JSON
 * over plain HTTP/1.1, and the Go, Python and TypeScript client programs.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, startSandboxd, type SandboxdProcess } from "../fixtures/sandboxd-process.js";

const run = promisify(execFile);
const GRPCURL = `${ROOT}.tools/bin/grpcurl`;

const ENV = {
  SANDBOXD_LOCAL_INSTANCE: "sandboxd-t-clients",
  SANDBOXD_LOCAL_SUBNET: "198.18.230.0/24",
  SANDBOXD_LOG_LEVEL: "info",
};

let server: SandboxdProcess;
/** `grpcurl -plaintext ADDRESS VERB...` (the address comes before list/describe). */
const grpcurl = async (...verb: string[]) => (await run(GRPCURL, ["-plaintext", server.address, ...verb], { timeout: 60_000 })).stdout;
const grpcurlCall = async (method: string, body: object) =>
  (await run(GRPCURL, ["-plaintext", "-d", JSON.stringify(body), server.address, `sandbox.v1.SandboxService/${method}`], { timeout: 60_000 })).stdout;

describe("sandboxd for its users", () => {
  beforeAll(async () => {
    server = await startSandboxd(ENV);
  });
  afterAll(async () => {
    const code = await server?.stop();
    // Leave no sandbox of this instance behind, whatever happened above.
    await run("node", ["--import", "tsx", "-e",
      `const { LocalRuntime } = await import("./server/providers/local/index.ts");
       const rt = new LocalRuntime({ instance: "${ENV.SANDBOXD_LOCAL_INSTANCE}", subnet: "${ENV.SANDBOXD_LOCAL_SUBNET}" });
       await rt.start(); await rt.purge();`], { cwd: ROOT, timeout: 60_000 });
    expect(code, server?.logs()).toBe(0);
  });

  it("answers grpcurl list and describe through reflection", async () => {
    const services = await grpcurl("list");
    expect(services).toContain("sandbox.v1.SandboxService");
    expect(services).toContain("grpc.health.v1.Health");
    expect(services).toContain("grpc.reflection.v1.ServerReflection");
    const described = await grpcurl("describe", "sandbox.v1.SandboxService");
    expect(described).toMatch(/rpc Exec \( \.sandbox\.v1\.ExecRequest \) returns \( stream \.sandbox\.v1\.ExecResponse \)/);
    expect(described).toMatch(/rpc Upload \( stream \.sandbox\.v1\.UploadRequest \)/);
  });

  it("creates, streams an Exec and destroys with grpcurl", async () => {
    const created = JSON.parse(await grpcurlCall("CreateSandbox", { resources: { cores: 1, memoryMib: 256, diskGib: 1 }, labels: { via: "grpcurl" } }));
    const id: string = created.sandbox.id;
    expect(created.sandbox.state).toBe("STATE_RUNNING");
    try {
      const out = await grpcurlCall("Exec", { sandboxId: id, shell: "echo hello; echo oops >&2; exit 7" });
      const events = out.trim().split(/\n(?=\{)/).map((s) => JSON.parse(s));
      expect(events[0].started.pid).toBeGreaterThan(0);
      const stdout = events.filter((e) => e.stdout).map((e) => Buffer.from(e.stdout, "base64").toString()).join("");
      const stderr = events.filter((e) => e.stderr).map((e) => Buffer.from(e.stderr, "base64").toString()).join("");
      expect(stdout).toBe("hello\n");
      expect(stderr).toBe("oops\n");
      expect(events.at(-1).exited).toMatchObject({ reason: "REASON_EXITED", exitCode: 7 });
    } finally {
      await grpcurlCall("DestroySandbox", { sandboxId: id });
    }
    await expect(grpcurlCall("GetSandbox", { sandboxId: id })).rejects.toThrow(/NotFound/);
  });

  it("speaks the Connect protocol's JSON to plain curl over HTTP/1.1", async () => {
    const { stdout } = await run("curl", ["-sS", "--fail-with-body", "-X", "POST", "-H", "Content-Type: application/json",
      "-d", JSON.stringify({ labelSelector: { nobody: "has-this" } }),
      `http://${server.address}/sandbox.v1.SandboxService/ListSandboxes`], { timeout: 30_000 });
    expect(JSON.parse(stdout)).toEqual({});
    const missing = await run("curl", ["-sS", "-X", "POST", "-H", "Content-Type: application/json", "-d", '{"sandboxId":"sbx-nope"}',
      `http://${server.address}/sandbox.v1.SandboxService/GetSandbox`]);
    expect(JSON.parse(missing.stdout).code).toBe("not_found");
  });

  it("serves the Go, Python and TypeScript client programs", async () => {
    const { stdout } = await run("bash", ["clients/run-all.sh", server.address], { cwd: ROOT, timeout: 600_000, maxBuffer: 64 << 20 });
    for (const lang of ["go", "python", "ts"]) expect(stdout).toContain(`OK ${lang}`);
    // Each one's archive step: a tar.gz up, a tar back, and a refused re-upload.
    expect(stdout.match(/\[archive: 4 entries up .* 5 down .* sha256 ok, ALREADY_EXISTS on re-upload\]/g)).toHaveLength(3);
  }, 900_000);
});

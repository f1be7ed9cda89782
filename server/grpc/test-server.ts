// Test-only helpers: a real h2c server with reflection + health and a stub
// SandboxService (the real implementation lives in server/server.ts).
import { execFile } from "node:child_process";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { SandboxService, file_sandbox_v1_sandbox } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { HealthService, registerHealth } from "./health.js";
import { registerReflection } from "./reflection.js";

export const GRPCURL = fileURLToPath(new URL("../../.tools/bin/grpcurl", import.meta.url));

export interface TestServer {
  baseUrl: string;
  address: string;
  health: HealthService;
  close(): Promise<void>;
}

export async function startTestServer(): Promise<TestServer> {
  const health = new HealthService();
  const routes = (router: ConnectRouter): void => {
    // Stub: only its descriptor matters for reflection; calls are UNIMPLEMENTED.
    router.service(SandboxService, {});
    registerReflection(router, [file_sandbox_v1_sandbox]);
    registerHealth(router, health);
  };
  const server = http2.createServer(connectNodeAdapter({ routes }));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    health,
    close: () =>
      new Promise<void>((resolve) => {
        // Clients may keep sessions open; destroy them so close() returns.
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const run = promisify(execFile);

/**
 * Run the real grpcurl as `grpcurl -plaintext FLAGS ADDRESS ARGS`; returns
 * stdout, or throws (with stderr on the error) on a non-zero exit.
 */
export async function grpcurl(flags: string[], address: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(GRPCURL, ["-plaintext", ...flags, address, ...args], { timeout: 20_000 });
  return stdout;
}

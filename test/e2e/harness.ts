/**
 * A real sandboxd in this process (startServer, port 0) on its own
 * LocalRuntime instance and subnet, with connect-es clients over gRPC,
 * Connect/HTTP2 and Connect/HTTP1.1. stop() shuts the server down and purges
 * the instance (every sandbox, bridge, nft table) whatever happened.
 * With provider "proxmox" the server runs a ProxmoxProvider against a PVE
 * emulator (whose containers are local sandboxes); stop() also closes the
 * emulator, which purges its runtime.
 */
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createLogger } from "../../server/api/logger.js";
import { loadConfig, type Config } from "../../server/config/config.js";
import { LocalRuntime } from "../../server/providers/local/index.js";
import { ProxmoxProvider } from "../../server/providers/proxmox/index.js";
import { proxmoxConfigOf, startEmulator, type Emulator, type EmulatorOptions } from "../pve-emulator/index.js";
import { startServer, type SandboxServer } from "../../server/server.js";
import { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";

export const PROVIDERS = ["local", "proxmox"] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export type SandboxClient = Client<typeof SandboxService>;

export interface E2E {
  server: SandboxServer;
  provider: ProviderName;
  /** Only with provider "proxmox". */
  emulator?: Emulator;
  baseUrl: string;
  grpc: SandboxClient;
  connect2: SandboxClient;
  connect1: SandboxClient;
  stop(): Promise<void>;
}

/** Spec files number their instances 0-47 (fixed per file; see e2eInstance). */
const MAX_E2E = 47;

/** The third octet of instance n's /24: local runtime, or the emulator's (`pve`). */
function octet(n: number, pve: boolean): number {
  if (n < 16) return (pve ? 190 : 240) + n;
  if (n < 32) return (pve ? 144 : 160) + n - 16;
  return (pve ? 112 : 128) + n - 32;
}

function checkN(n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > MAX_E2E) throw new Error(`e2e instance number ${n} is not in 0..${MAX_E2E}`);
}

/** Instances sandboxd-t-e2e<n> on 198.18.240+n.0/24 (n 0-15), 198.18.160+(n-16).0/24 (n 16-31), 198.18.128+(n-32).0/24 (n 32-47): n is fixed per spec file. */
export function e2eInstance(n: number): { instance: string; subnet: string } {
  checkN(n);
  return { instance: `sandboxd-t-e2e${n}`, subnet: `198.18.${octet(n, false)}.0/24` };
}

/** The PVE emulator's runtime for spec file n: sandboxd-t-e2e<n>-pve on 198.18.190+n (n 0-15), 144+(n-16) (n 16-31), 112+(n-32) (n 32-47). */
export function e2eEmulatorInstance(n: number): { instance: string; subnet: string } {
  checkN(n);
  return { instance: `sandboxd-t-e2e${n}-pve`, subnet: `198.18.${octet(n, true)}.0/24` };
}

const EMULATOR_TIMING = { cloneMs: 150, startMs: 50, ipDelayMs: 100, stopMs: 10, destroyMs: 10, authFailDelayMs: 100 };

/** The server's log lines as parsed JSON objects, when startE2E is given an array to fill. */
export type LogLines = Array<Record<string, unknown>>;

export async function startE2E(n: number, env: Record<string, string> = {}, provider: ProviderName = "local", logs?: LogLines, emulatorOptions: Partial<EmulatorOptions> = {}): Promise<E2E> {
  const { instance, subnet } = e2eInstance(n);
  const config: Config = loadConfig({
    SANDBOXD_LISTEN: "127.0.0.1:0",
    SANDBOXD_ADMIN_LISTEN: "127.0.0.1:0",
    SANDBOXD_LOCAL_INSTANCE: instance,
    SANDBOXD_LOCAL_SUBNET: subnet,
    SANDBOXD_DEFAULT_MEMORY_MIB: "256",
    SANDBOXD_DEFAULT_DISK_GIB: "1",
    SANDBOXD_LEASE_REAP_INTERVAL: "200ms",
    SANDBOXD_DRAIN_DELAY: "0s",
    ...env,
  });
  const logger = logs
    ? createLogger("info", { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) })
    : createLogger(process.env.E2E_LOG_LEVEL ?? "silent");
  let emulator: Emulator | undefined;
  const cleanup = async () => {
    try {
      await emulator?.close();
    } finally {
      await purge(n);
    }
  };
  let server: SandboxServer;
  try {
    if (provider === "proxmox") {
      emulator = await startEmulator({ port: 0, nodes: 1, timing: EMULATOR_TIMING, ...e2eEmulatorInstance(n), ...emulatorOptions });
      server = await startServer(config, logger, new ProxmoxProvider(proxmoxConfigOf(emulator.connection), { logger }));
    } else {
      server = await startServer(config, logger);
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  const baseUrl = `http://${server.address}`;
  let stopped: Promise<void> | undefined;
  return {
    server,
    provider,
    emulator,
    baseUrl,
    grpc: createClient(SandboxService, createGrpcTransport({ baseUrl })),
    connect2: createClient(SandboxService, createConnectTransport({ baseUrl, httpVersion: "2" })),
    connect1: createClient(SandboxService, createConnectTransport({ baseUrl, httpVersion: "1.1" })),
    stop: () =>
      (stopped ??= (async () => {
        try {
          await server.shutdown();
        } finally {
          await cleanup();
        }
        // Every call sandboxd made in this suite must be one Proxmox's published schema accepts.
        const refused = emulator?.rejectedRequests() ?? [];
        if (refused.length) throw new Error(`sandboxd sent requests Proxmox's schema refuses: ${JSON.stringify(refused)}`);
      })()),
  };
}

export async function purge(n: number): Promise<void> {
  await new LocalRuntime(e2eInstance(n)).purge();
}

/** Collects an Exec stream into text and the exited event. */
export async function collectExec(stream: AsyncIterable<{ event: { case: string | undefined; value?: unknown } }>) {
  let stdout = "";
  let stderr = "";
  let started: { execId: string; pid: number } | undefined;
  let exited: { reason: number; exitCode?: number; signal: string } | undefined;
  for await (const m of stream) {
    const e = m.event;
    if (e.case === "started") started = e.value as typeof started;
    else if (e.case === "stdout") stdout += Buffer.from(e.value as Uint8Array).toString();
    else if (e.case === "stderr") stderr += Buffer.from(e.value as Uint8Array).toString();
    else if (e.case === "exited") exited = e.value as typeof exited;
  }
  return { stdout, stderr, started, exited };
}

/** Whether GetSandbox finds the sandbox (NOT_FOUND: false; other errors throw). */
export async function exists(client: SandboxClient, id: string): Promise<boolean> {
  try {
    await client.getSandbox({ sandboxId: id });
    return true;
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.NotFound) return false;
    throw err;
  }
}

/**
 * The gRPC server for the benchmark, on its own thread: in production clients
 * are other processes, so the server must not share an event loop with the
 * benchmark's client. The main thread asks it for a sandbox's SshTarget to run
 * the raw baselines against the same sandbox.
 */
import { parentPort, workerData } from "node:worker_threads";
import { createLogger } from "../../server/api/logger.js";
import { loadConfig } from "../../server/config/config.js";
import { LocalRuntime } from "../../server/providers/local/index.js";
import { startServer } from "../../server/server.js";

export type ToWorker = { type: "target"; id: string } | { type: "stop" };
export type FromWorker =
  | { type: "ready"; address: string }
  | { type: "target"; ssh: unknown }
  | { type: "stopped" }
  | { type: "error"; message: string };

const { instance, subnet } = workerData as { instance: string; subnet: string };
const port = parentPort!;
const runtime = new LocalRuntime({ instance, subnet });
try {
  const server = await startServer(loadConfig({ SANDBOXD_LISTEN: "127.0.0.1:0", SANDBOXD_ADMIN_LISTEN: "127.0.0.1:0", SANDBOXD_LOG_LEVEL: "warn", SANDBOXD_DRAIN_DELAY: "0s" }), createLogger("warn"), runtime);
  port.postMessage({ type: "ready", address: server.address } satisfies FromWorker);
  port.on("message", async (msg: ToWorker) => {
    if (msg.type === "target") {
      port.postMessage({ type: "target", ssh: (await runtime.get(msg.id))?.ssh } satisfies FromWorker);
    } else {
      await server.shutdown();
      await runtime.purge();
      port.postMessage({ type: "stopped" } satisfies FromWorker);
      port.close();
    }
  });
} catch (err) {
  await runtime.purge().catch(() => {});
  port.postMessage({ type: "error", message: String(err) } satisfies FromWorker);
}

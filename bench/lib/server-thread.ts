/**
 * The gRPC server on a worker thread (server-worker.ts) with its own runtime
 * instance, for parts that need it beside their raw baselines: in production
 * clients are other processes, so the server must not share the benchmark's
 * event loop. `stop()` shuts the server down and purges the instance.
 */
import { Worker } from "node:worker_threads";
import type { SshTarget } from "../../server/providers/provider.js";
import type { FromWorker, ToWorker } from "./server-worker.js";

export interface ServerThread {
  address: string;
  /** The SSH target of one of the server's sandboxes, for the raw baselines. */
  sshTarget(sandboxId: string): Promise<SshTarget>;
  /** Shuts the server down and purges its runtime instance. */
  stop(): Promise<void>;
}

export async function startServerThread(instance: string, subnet: string): Promise<ServerThread> {
  const worker = new Worker(new URL("./server-worker.mjs", import.meta.url), { workerData: { instance, subnet } });
  const replies: FromWorker[] = [];
  let wake: (() => void) | undefined;
  worker.on("message", (m: FromWorker) => {
    replies.push(m);
    wake?.();
  });
  worker.on("error", (e) => {
    replies.push({ type: "error", message: String(e) });
    wake?.();
  });
  const reply = async (): Promise<FromWorker> => {
    while (replies.length === 0) await new Promise<void>((r) => (wake = r));
    const m = replies.shift()!;
    if (m.type === "error") throw new Error(`server worker: ${m.message}`);
    return m;
  };
  const ready = await reply().catch(async (err) => {
    await worker.terminate();
    throw err;
  });
  if (ready.type !== "ready") throw new Error("server worker did not start");
  return {
    address: ready.address,
    async sshTarget(id) {
      worker.postMessage({ type: "target", id } satisfies ToWorker);
      const m = await reply();
      if (m.type !== "target" || !m.ssh) throw new Error(`sandbox ${id} not found in the server's runtime`);
      const ssh = m.ssh as SshTarget;
      ssh.privateKey = Buffer.from(ssh.privateKey); // structured clone turns Buffers into Uint8Arrays
      return ssh;
    },
    async stop() {
      worker.postMessage({ type: "stop" } satisfies ToWorker);
      await reply().catch(() => {});
      await worker.terminate();
    },
  };
}

/**
 * Test-only: a runtime in a process of its own, for recovery.spec.ts to kill
 * with SIGKILL. Usage: testing-child.ts <instance> <subnet> <complete> <midway>
 * Creates <complete> sandboxes (the last with internet), printing each as a
 * JSON line, then starts <midway> creates 15 ms apart, prints "MIDWAY" and
 * waits to be killed.
 */
import { LocalRuntime } from "./runtime.js";

const [instance, subnet, complete, midway] = process.argv.slice(2);
const rt = new LocalRuntime({ instance: instance!, subnet: subnet! });
await rt.start();
const n = Number(complete);
for (let i = 0; i < n; i++) {
  const h = await rt.create({ cores: 1, memoryMiB: 128, diskGiB: 1, internet: i === n - 1, labels: { n: String(i) } });
  process.stdout.write(`${JSON.stringify({ id: h.id, address: h.address, hostKey: h.ssh.hostKey, internet: h.spec.internet })}\n`);
}
process.stdout.write("MIDWAY\n");
for (let i = 0; i < Number(midway); i++) {
  rt.create({ cores: 1, memoryMiB: 128, diskGiB: 1, internet: true, labels: {} }).catch(() => {});
  await new Promise((r) => setTimeout(r, 15));
}
setInterval(() => {}, 60_000); // stay alive until killed

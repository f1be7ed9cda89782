/**
 * npm run pve-emulator -- [--host 127.0.0.1] [--port 8006] [--state-dir DIR] [--nodes N] [--pool P]
 *   [--template-id 9000] [--instance pve-emu] [--subnet 198.18.180.0/24] [--clone-ms 5000] [--start-ms 1000]
 *   [--ip-delay-ms 1500] [--auth-fail-delay-ms 3000] [--latency-ms 0] [--error-rate 0] [--error-status 596]
 *   [--drop-rate 0] [--task-fail-rate 0] [--lock-timeout-rate 0] [--pve-version 9.1.3] [--template-disk-gib 1]
 *   [--per-node-templates] [--shared-storage ceph] [--datacenter-firewall-off] [--template-no-egress-group]
 * Writes DIR/connection.json; Ctrl-C destroys every sandbox and purges the runtime.
 */
import { parseArgs } from "node:util";
import pino from "pino";
import { startEmulator } from "./index.js";

const STRINGS = ["host", "port", "state-dir", "nodes", "pool", "template-id", "instance", "subnet", "clone-ms", "start-ms", "ip-delay-ms",
  "auth-fail-delay-ms", "latency-ms", "error-rate", "error-status", "drop-rate", "task-fail-rate", "lock-timeout-rate", "pve-version",
  "template-disk-gib", "shared-storage"];
const FLAGS = ["per-node-templates", "datacenter-firewall-off", "template-no-egress-group"];
const { values: a } = parseArgs({
  options: {
    ...Object.fromEntries(STRINGS.map((k) => [k, { type: "string" as const }])),
    ...Object.fromEntries(FLAGS.map((k) => [k, { type: "boolean" as const }])),
  },
});
const num = (k: string) => (a[k] === undefined ? undefined : Number(a[k]));
const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

const logger = pino({ level: process.env.LOG_LEVEL ?? "info" });
const emulator = await startEmulator({
  host: a.host as string | undefined,
  port: num("port"),
  stateDir: (a["state-dir"] as string | undefined) ?? "/tmp/pve-emulator",
  nodes: num("nodes"),
  pool: a.pool as string | undefined,
  instance: a.instance as string | undefined,
  subnet: a.subnet as string | undefined,
  template: defined({
    vmid: num("template-id"), diskGiB: num("template-disk-gib"), perNode: a["per-node-templates"] as boolean | undefined,
    egressGroup: a["template-no-egress-group"] ? false : undefined,
    storage: a["shared-storage"] === undefined ? undefined : { id: String(a["shared-storage"]), shared: true },
  }),
  version: a["pve-version"] as string | undefined,
  datacenterFirewall: a["datacenter-firewall-off"] ? false : undefined,
  timing: defined({ cloneMs: num("clone-ms"), startMs: num("start-ms"), ipDelayMs: num("ip-delay-ms"), authFailDelayMs: num("auth-fail-delay-ms") }),
  faults: defined({
    latencyMs: num("latency-ms"), errorRate: num("error-rate"), errorStatus: num("error-status"), dropRate: num("drop-rate"),
    taskFailRate: num("task-fail-rate"), lockTimeoutRate: num("lock-timeout-rate"),
  }),
  logger,
});
process.stdout.write(`${emulator.connectionFile}\n${JSON.stringify(emulator.connection, null, 2)}\n`);
let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    emulator.close().then(() => process.exit(0), (e) => (logger.error({ err: e }, "close failed"), process.exit(1)));
  });
}

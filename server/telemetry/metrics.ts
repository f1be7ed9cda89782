/**
 * Every Prometheus metric sandboxd exports, in one registry per process (as a
 * Go service's default registry): the code that does the work records here
 * with one call, the admin listener exposes the registry.
 *
 * RPC metrics follow go-grpc-prometheus (grpc_server_*), so dashboards made
 * for Go gRPC services work unchanged. No label carries an unbounded value:
 * no sandbox ids, paths, tenants or messages; Proxmox paths are templates.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const RPC_LABELS = ["grpc_type", "grpc_service", "grpc_method"] as const;
/** go-grpc-prometheus's defaults, plus minutes: Exec and Attach streams run long. */
const RPC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const CREATE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];

const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
  new Counter<L>({ name, help, labelNames, registers: [registry] });
const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
  new Gauge<L>({ name, help, labelNames, registers: [registry] });
const histogram = <L extends string>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []) =>
  new Histogram<L>({ name, help, buckets, labelNames, registers: [registry] });

export const rpc = {
  started: counter("grpc_server_started_total", "RPCs started on the server.", RPC_LABELS),
  handled: counter("grpc_server_handled_total", "RPCs completed on the server, whatever their status.", [...RPC_LABELS, "grpc_code"]),
  received: counter("grpc_server_msg_received_total", "Messages received from clients.", RPC_LABELS),
  sent: counter("grpc_server_msg_sent_total", "Messages sent to clients.", RPC_LABELS),
  seconds: histogram("grpc_server_handling_seconds", "Time from an RPC's start to its status, in seconds.", RPC_BUCKETS, RPC_LABELS),
  streamsInFlight: gauge("sandboxd_grpc_streams_in_flight", "Streaming RPCs running now.", RPC_LABELS),
};

export const transport = {
  keepaliveTimeouts: counter("sandboxd_http2_keepalive_timeouts_total", "Connections closed because a keepalive PING was not acknowledged."),
  maxAgeGoaways: counter("sandboxd_http2_max_age_goaways_total", "GOAWAYs sent to connections that reached the maximum connection age."),
};

/** What a server counts on its own, read at each scrape (one source per running server). */
export interface ScrapeSource {
  sandboxes(): Array<{ provider: string; state: string; count: number }>;
  transport(): { connections: number; bytesReceived: number; bytesSent: number };
}
const sources = new Set<ScrapeSource>();
/** Bytes of servers that stopped, so the byte counters never go down within a process. */
const retired = { bytesReceived: 0, bytesSent: 0 };

/** Adds a running server's own counts to every scrape; the returned function removes them (at shutdown). */
export function addScrapeSource(source: ScrapeSource): () => void {
  sources.add(source);
  return () => {
    if (!sources.delete(source)) return;
    const t = source.transport();
    retired.bytesReceived += t.bytesReceived;
    retired.bytesSent += t.bytesSent;
  };
}

const transportSum = (key: "connections" | "bytesReceived" | "bytesSent") =>
  [...sources].reduce((n, s) => n + s.transport()[key], key === "connections" ? 0 : retired[key]);

new Gauge({
  name: "sandboxd_transport_connections", help: "Open client connections (TCP).", registers: [registry],
  collect() { this.set(transportSum("connections")); },
});
new Counter({
  name: "sandboxd_transport_received_bytes_total", help: "Bytes received from clients on the wire (TLS included).", registers: [registry],
  collect() { this.reset(); this.inc(transportSum("bytesReceived")); },
});
new Counter({
  name: "sandboxd_transport_sent_bytes_total", help: "Bytes sent to clients on the wire (TLS included).", registers: [registry],
  collect() { this.reset(); this.inc(transportSum("bytesSent")); },
});

export const sandboxes = {
  byState: new Gauge({
    name: "sandboxd_sandboxes", help: "Sandboxes this replica knows, by provider and state.", labelNames: ["provider", "state"], registers: [registry],
    collect() {
      this.reset();
      for (const s of sources) for (const { provider, state, count } of s.sandboxes()) this.inc({ provider, state }, count);
    },
  }),
  createSeconds: histogram("sandboxd_sandbox_create_seconds", "Time to create a sandbox (successful creates), in seconds.", CREATE_BUCKETS, ["provider"]),
  createFailures: counter("sandboxd_sandbox_create_failures_total", "Creates that failed, by cause (the error's kind).", ["provider", "cause"]),
  destroys: counter("sandboxd_sandbox_destroys_total", "Sandboxes destroyed, by reason.", ["provider", "reason"]),
  destroyFailures: counter("sandboxd_sandbox_destroy_failures_total", "Destroys that failed (retried by the caller or the reaper).", ["provider"]),
};

export const pool = {
  size: gauge("sandboxd_warm_pool_ready", "Warm pool members ready to be claimed, by shape.", ["shape"]),
  claims: counter("sandboxd_warm_pool_claims_total", "Creates served by a warm pool member, by shape.", ["shape"]),
  misses: counter("sandboxd_warm_pool_misses_total", "Creates of a pooled shape that found the pool empty (made cold), by shape.", ["shape"]),
  broken: counter("sandboxd_warm_pool_broken_total", "Members found broken (sshd silent) at claim time and destroyed, by shape.", ["shape"]),
  refillSeconds: histogram("sandboxd_warm_pool_refill_seconds", "Time to make a warm pool member, by shape and result.", CREATE_BUCKETS, ["shape", "result"]),
};

export const leases = {
  renewals: counter("sandboxd_lease_renewals_total", "Lease renewals (KeepAlive, and RPCs holding a sandbox)."),
  providerWrites: counter("sandboxd_lease_provider_writes_total", "Lease writes to the provider's store, by result.", ["result"]),
  reaps: counter("sandboxd_lease_reaps_total", "Sandboxes destroyed because their lease ran out."),
  reapFailures: counter("sandboxd_lease_reap_failures_total", "Reaps that failed (retried with backoff)."),
  reapLateness: histogram("sandboxd_lease_reap_lateness_seconds", "Time from a lease's expiry to its sandbox's reap, in seconds.", [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300]),
  syncRuns: counter("sandboxd_replica_sync_runs_total", "Periodic re-listings of the provider's sandboxes, by result.", ["result"]),
};

export const proxmox = {
  requests: counter("sandboxd_proxmox_api_requests_total", "Proxmox API requests (each attempt), by method, path template and HTTP status (0: no answer).", ["method", "path", "status"]),
  seconds: histogram("sandboxd_proxmox_api_request_seconds", "Proxmox API request latency (each attempt), in seconds.", LATENCY_BUCKETS, ["method", "path"]),
  retries: counter("sandboxd_proxmox_api_retries_total", "Proxmox API calls retried, by why.", ["method", "path", "kind"]),
  taskSeconds: histogram("sandboxd_proxmox_task_seconds", "Proxmox task durations as sandboxd waited for them, by task type and outcome.", CREATE_BUCKETS, ["type", "result"]),
};

export const ssh = {
  connections: gauge("sandboxd_ssh_connections", "Open SSH connections to sandboxes."),
  channels: gauge("sandboxd_ssh_channels_in_use", "SSH channels open now (exec, sftp)."),
  handshakes: counter("sandboxd_ssh_handshakes_total", "SSH connection attempts, by result.", ["result"]),
  handshakeSeconds: histogram("sandboxd_ssh_handshake_seconds", "Time to connect and authenticate to a sandbox's sshd, in seconds.", LATENCY_BUCKETS),
  channelOpenRetries: counter("sandboxd_ssh_channel_open_retries_total", "Channel opens refused by sshd and retried (MaxSessions)."),
  queueWaitSeconds: histogram("sandboxd_ssh_channel_queue_wait_seconds", "Time a channel open waited for a free channel slot, in seconds.", LATENCY_BUCKETS),
  execSeconds: histogram("sandboxd_exec_duration_seconds", "Exec durations, by how the command ended.", RPC_BUCKETS, ["exit_reason"]),
};

/** Path segments after which comes a name or id, and what to call it. */
const PLACEHOLDERS: Record<string, string> = {
  nodes: "{node}", lxc: "{vmid}", qemu: "{vmid}", tasks: "{upid}", storage: "{storage}", pools: "{pool}", content: "{volume}",
  snapshot: "{snapshot}", ipset: "{name}", aliases: "{name}", groups: "{name}", rules: "{pos}",
};

/** Bounded label for a Proxmox API path: ids, names and UPIDs become placeholders, and so does anything not a plain word. */
export function proxmoxPathTemplate(path: string): string {
  const segs = path.split("?")[0]!.split("/");
  return segs
    .map((seg, i) => {
      const named = PLACEHOLDERS[segs[i - 1] ?? ""];
      if (named && seg) return named;
      return seg === "" || /^[a-z][a-z_]{0,23}$/.test(seg) ? seg : "{id}";
    })
    .join("/");
}

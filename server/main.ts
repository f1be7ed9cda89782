/** sandboxd entry point: config from SANDBOXD_* (and SANDBOXD_CONFIG), serve until SIGTERM/SIGINT. */
import { createLogger } from "./api/logger.js";
import { ConfigError, loadConfig } from "./config/config.js";
import { startServer } from "./server.js";
import { initTracing, TracingConfigError, type Tracing } from "./telemetry/tracing.js";

async function main(): Promise<void> {
  let config;
  let tracing: Tracing;
  try {
    config = loadConfig();
    tracing = initTracing();
  } catch (err) {
    if (err instanceof ConfigError || err instanceof TracingConfigError) {
      console.error(`sandboxd: invalid configuration: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  if (config.provider === "local" && process.getuid?.() !== 0) {
    logger.fatal("the local provider needs root (network namespaces, cgroups, nftables): run sandboxd as root");
    process.exit(1);
  }
  const server = await startServer(config, logger).catch((err: unknown) => {
    logger.fatal({ err: err instanceof Error ? err.message : String(err) }, "sandboxd failed to start");
    process.exit(1);
  });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    // A second signal means "now": skip the grace period.
    if (++signals > 1) process.exit(130);
    logger.info({ signal: sig }, "shutting down");
    server.shutdown().then(
      // Spans still buffered go out before the process ends (bounded by the exporter's timeout).
      () => tracing.shutdown().catch(() => {}).finally(() => process.exit(0)),
      (err: unknown) => {
        logger.error({ err: String(err) }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

void main();

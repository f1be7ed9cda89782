/** The pino logger: JSON lines, secrets redacted wherever they turn up in logged objects, and the trace and span ids of the RPC (or other span) a line is written in. */
import { pino, type Logger } from "pino";
import { currentTraceIds } from "../telemetry/tracing.js";

export const REDACT_PATHS = [
  "privateKey", "*.privateKey", "*.*.privateKey",
  "key", "*.key", "token", "*.token", "password", "*.password",
  "authorization", "*.authorization", "headers.authorization", "*.headers.authorization",
  "ssh.privateKey", "*.ssh.privateKey",
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: "sandboxd" }, mixin: () => currentTraceIds() ?? {}, redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, destination);
}

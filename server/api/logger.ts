/** The pino logger: JSON lines, secrets redacted wherever they turn up in logged objects. */
import { pino, type Logger } from "pino";

export const REDACT_PATHS = [
  "privateKey", "*.privateKey", "*.*.privateKey",
  "key", "*.key", "token", "*.token", "password", "*.password",
  "authorization", "*.authorization", "headers.authorization", "*.headers.authorization",
  "ssh.privateKey", "*.ssh.privateKey",
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: "sandboxd" }, redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, destination);
}

/** Maps Proxmox failures to sandboxd's typed errors (messages never include the token). */
import { SandboxError, cancelled, deadlineExceeded, internal, isSandboxError, notFound, permissionDenied, unavailable } from "../../errors.js";
import { classify, PveError } from "./retry.js";
import { TaskFailedError, TaskTimeoutError } from "./tasks.js";

export function toSandboxError(e: unknown, what: string, signal?: AbortSignal): SandboxError {
  if (isSandboxError(e)) return e;
  if (signal?.aborted) return cancelled(`${what}: cancelled`);
  if (e instanceof TaskFailedError) return unavailable(`${what}: Proxmox ${e.message}`);
  if (e instanceof TaskTimeoutError) return deadlineExceeded(`${what}: ${e.message}`);
  if (e instanceof PveError) {
    switch (classify(e)) {
      case "auth":
        return new SandboxError("failed_precondition", `${what}: Proxmox rejected the API token (${e.status} ${e.detail}); check SANDBOXD_PROXMOX_TOKEN_ID and SANDBOXD_PROXMOX_SECRET`);
      case "permission":
        return permissionDenied(`${what}: ${e.message} (check the token's privileges on the pool)`);
      case "not_found":
        return notFound(`${what}: ${e.message}`);
      case "transient":
      case "locked":
      case "conflict":
        return unavailable(`${what}: ${e.message}`);
      default:
        return internal(`${what}: ${e.message}`);
    }
  }
  if ((e as Error)?.name === "AbortError" || (e as Error)?.name === "TimeoutError") return cancelled(`${what}: cancelled`);
  return internal(`${what}: ${(e as Error)?.message ?? String(e)}`);
}

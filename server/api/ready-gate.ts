/**
 * Until the provider has started (the local runtime adopted its sandboxes,
 * Proxmox answered), the SandboxService does not know which sandboxes exist:
 * a GetSandbox would say NOT_FOUND for a live one, a Destroy would "succeed"
 * on nothing. The port is open early only so health can say NOT_SERVING, so
 * every SandboxService call answers UNAVAILABLE meanwhile, which clients
 * retry (idempotent calls) like any restart.
 */
import type { Interceptor } from "@connectrpc/connect";
import { unavailable } from "../errors.js";

export class ReadyGate {
  private ready = false;

  open(): void {
    this.ready = true;
  }

  interceptor(): Interceptor {
    return (next) => async (req) => {
      if (!this.ready && req.service.typeName === "sandbox.v1.SandboxService") {
        throw unavailable("sandboxd is starting: its sandboxes are not loaded yet; retry shortly");
      }
      return next(req);
    };
  }
}

/** What every handler gets. */
import type { SandboxManager } from "../sandboxes/manager.js";
import type { SessionRegistry } from "../ssh/index.js";

export interface ApiDeps {
  manager: SandboxManager;
  registry: SessionRegistry;
}

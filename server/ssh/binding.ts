/** ssh2's native crypto binding comes from an install script; without it GCM runs in JavaScript, several times slower. */
import { createRequire } from "node:module";

export function sshBindingAvailable(): boolean {
  const require = createRequire(import.meta.url);
  return Boolean((require("ssh2/lib/protocol/crypto.js") as { bindingAvailable?: boolean }).bindingAvailable);
}

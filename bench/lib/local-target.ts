/**
 * The SSH target of a local-runtime sandbox read from the runtime's state
 * directory, for raw baselines against a sandboxd running as another process
 * (root only: the client key is 0600).
 */
import { readFile } from "node:fs/promises";
import type { SshTarget } from "../../server/providers/provider.js";

export async function localSshTarget(instance: string, sandboxId: string, stateDir = `/var/lib/sandboxd/${instance}`): Promise<SshTarget> {
  const record = JSON.parse(await readFile(`${stateDir}/sandboxes/${sandboxId}/state.json`, "utf8")) as { address: string; hostKey: string };
  const privateKey = await readFile(`${stateDir}/client_ed25519`);
  return { host: record.address, port: 22, username: "sandbox", privateKey, hostKey: record.hostKey };
}

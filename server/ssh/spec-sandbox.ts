/**
 * What the data-plane specs run against: an SshTarget and a writable home.
 * Today an OpenSSH sshd started by test/fixtures/sshd.ts; to test real
 * sandboxes, change only this file (the specs use nothing else of the fixture).
 */
import { randomBytes } from "node:crypto";
import { startSshd } from "../../test/fixtures/sshd.js";
import type { SshTarget } from "../providers/provider.js";
import { execCollect, type CollectedExec } from "./exec-collect.js";
import { quote } from "./command-line.js";
import { SessionRegistry, type SessionRegistryOptions } from "./session-registry.js";

export interface SpecSandbox {
  id: string;
  target: SshTarget;
  registry: SessionRegistry;
  homeDir: string;
  /** A fresh directory under the home, removed by stop(). */
  workDir: string;
  /** True when sandbox paths are host paths (the sshd fixture): tests may mount things. */
  sharesHostFs: boolean;
  /** Runs a shell snippet in the sandbox, failing on a non-zero exit. */
  sh(script: string): Promise<string>;
  run(script: string): Promise<CollectedExec>;
  stop(): Promise<void>;
}

export async function startSpecSandbox(options: SessionRegistryOptions = {}): Promise<SpecSandbox> {
  const fixture = await startSshd();
  const id = `spec-${randomBytes(4).toString("hex")}`;
  const registry = new SessionRegistry(options);
  registry.register(id, fixture.target);
  const run = (script: string) => execCollect(registry, id, { shell: script });
  const sh = async (script: string) => {
    const r = await run(script);
    if (r.exitCode !== 0) throw new Error(`${script}: exit ${r.exitCode} ${r.signal ?? ""} ${r.stderr.toString()}`);
    return r.stdout.toString();
  };
  let workDir = "";
  try {
    workDir = (await sh(`mktemp -d ${quote(fixture.homeDir + "/spec.XXXXXX")}`)).trim();
  } catch (err) {
    await registry.closeAll();
    await fixture.stop();
    throw err;
  }
  return {
    id,
    target: fixture.target,
    registry,
    homeDir: fixture.homeDir,
    workDir,
    sharesHostFs: true,
    sh,
    run,
    stop: async () => {
      try {
        await sh(`chmod -R u+rwX ${quote(workDir)} 2>/dev/null; rm -rf ${quote(workDir)}`);
      } finally {
        await registry.closeAll();
        await fixture.stop();
      }
    },
  };
}

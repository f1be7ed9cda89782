/** Runs a command to completion and collects its output (for short commands and internal use). */
import { exec } from "./exec.js";
import type { ExecOptions, ExitedEvent } from "./exec-types.js";
import type { SessionRegistry } from "./session-registry.js";

export interface CollectedExec extends ExitedEvent {
  pid: number | undefined;
  stdout: Buffer;
  stderr: Buffer;
}

/** Set maxStdoutBytes/maxStderrBytes to bound memory: everything is held until exit. */
export async function execCollect(registry: SessionRegistry, sandboxId: string, options: ExecOptions): Promise<CollectedExec> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let pid: number | undefined;
  for await (const e of exec(registry, sandboxId, options)) {
    if (e.type === "started") pid = e.pid;
    else if (e.type === "stdout") out.push(e.data);
    else if (e.type === "stderr") err.push(e.data);
    else return { ...e, pid, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
  }
  throw new Error("exec stream ended without an exited event"); // unreachable: exec throws instead
}

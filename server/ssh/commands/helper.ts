/**
 * sbx-run, the small helper that keeps commands inside a sandbox
 * (sandbox-tools/sbx-run): its binary on this host, and running one of its
 * subcommands in a sandbox, installing it there first if it is missing.
 *
 * It is installed per version (`~/.sandboxd/bin/sbx-run-<version>`), by SFTP,
 * on first use; a newer sandboxd installs its own version beside the old one.
 * The sandbox can replace that file: what it prints is treated as untrusted,
 * bounded input (frames.ts), and only ever concerns the sandbox's own commands.
 */
import { createReadStream, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { alreadyExists, failedPrecondition, internal, invalidArgument, notFound, type SandboxError } from "../../errors.js";
import { execCollect, type CollectedExec } from "../exec-collect.js";
import { exec } from "../exec.js";
import type { ExecOptions, ExecStream } from "../exec-types.js";
import type { SessionRegistry } from "../session-registry.js";
import { upload } from "../upload.js";

export const SBX_RUN_VERSION = 3;
/** Where kept commands live in every sandbox (relative to the sandbox user's home). */
export const COMMANDS_DIR = ".sandboxd/cmds";
const INSTALLED = `.sandboxd/bin/sbx-run-${SBX_RUN_VERSION}`;
/** Exit status of the install probe when the helper is not there. */
const MISSING = 97;

/** The static binary built by scripts/setup.sh (sandbox-tools/sbx-run/build.sh). */
export const HELPER_BINARY = process.env.SANDBOXD_SBX_RUN_BINARY ?? fileURLToPath(new URL("../../../sandbox-tools/sbx-run/bin/sbx-run", import.meta.url));

/** Sandboxes where this process installed (or found) the helper: one probe per sandbox and process. */
const present = new Set<string>();

async function install(registry: SessionRegistry, sandboxId: string): Promise<void> {
  if (!existsSync(HELPER_BINARY)) throw internal(`the sbx-run binary is missing at ${HELPER_BINARY}: run scripts/setup.sh`);
  await upload(registry, sandboxId, { path: INSTALLED, source: createReadStream(HELPER_BINARY), mode: 0o755, createParents: true });
}

/** `sh` that runs the installed helper with `args`, or exits MISSING when it is not there. */
function helperLine(args: string[]): string[] {
  return ["/bin/sh", "-c", `[ -x "$HOME/${INSTALLED}" ] || exit ${MISSING}; exec "$HOME/${INSTALLED}" "$@"`, "sbx-run", ...args];
}

/** Runs a helper subcommand to completion (small output), installing the helper first when needed. */
export async function runHelper(registry: SessionRegistry, sandboxId: string, args: string[], options: Omit<ExecOptions, "argv" | "shell"> = {}): Promise<CollectedExec> {
  const bounded = { maxStdoutBytes: 1 << 20, maxStderrBytes: 4096, onOutputLimit: "kill" as const, ...options };
  for (let attempt = 0; ; attempt++) {
    const r = await execCollect(registry, sandboxId, { ...bounded, argv: helperLine(args) });
    if (r.exitCode !== MISSING) {
      present.add(sandboxId);
      return r;
    }
    if (attempt > 0) throw failedPrecondition(`sandbox ${sandboxId}: sbx-run is missing even after installing it (is the home directory writable?)`);
    present.delete(sandboxId);
    await install(registry, sandboxId);
  }
}

/** Streams a helper subcommand (attach, input): installs the helper first if this process has not seen it there. */
export async function streamHelper(registry: SessionRegistry, sandboxId: string, args: string[], options: Omit<ExecOptions, "argv" | "shell"> = {}): Promise<ExecStream> {
  if (!present.has(sandboxId)) await runHelper(registry, sandboxId, ["version"]);
  return exec(registry, sandboxId, { ...options, argv: helperLine(args) });
}

/** Forgets what this process knows of a sandbox (destroyed). */
export function forgetHelper(sandboxId: string): void {
  present.delete(sandboxId);
}

/** A helper subcommand's error text: its last stderr line, bounded (it comes from the sandbox). */
export function helperMessage(r: Pick<CollectedExec, "stderr" | "exitCode">): string {
  const line = r.stderr.toString("utf8").trim().split("\n").pop() ?? "";
  const text = line.replace(/^sbx-run: /, "").replace(/[^\x20-\x7e]/g, "?").slice(0, 300);
  return text || `sbx-run exited ${r.exitCode}`;
}

/** The error for a helper subcommand's exit status (its documented codes: 2, 3, 4, 5). */
export function helperError(r: Pick<CollectedExec, "stderr" | "exitCode">, field = "command"): SandboxError {
  const m = helperMessage(r);
  switch (r.exitCode) {
    case 2: return invalidArgument(field, m);
    case 3: return failedPrecondition(m);
    case 4: return notFound(m);
    case 5: return alreadyExists(m);
    default: return internal(`sbx-run failed: ${m}`);
  }
}

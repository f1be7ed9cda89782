/**
 * Builds the POSIX-sh wrapper sent as the SSH exec command, and parses the
 * header line it prints.
 *
 * sshd runs each session in a new session/process group (setsid) and, in
 * sandboxes, a ForceCommand `exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"` keeps
 * that pid. The wrapper checks the cwd, exports the environment (sshd drops
 * SSH `env` requests), prints `P<pid> <nonce>` — the process group to kill
 * later — and execs the command, so the command is the group leader itself.
 *
 * The header is the only proof that the command really started: everything
 * after it is the command's own output and exit status. So it carries a
 * per-exec secret (16 random bytes, hex) that only this wrapper's text holds,
 * and a header without it is refused. Nothing the sandbox can write may run
 * before the wrapper (no rc files: the sandbox's login shell is /bin/sh, the
 * local runtime's ForceCommand hands sandboxd's commands to /bin/sh, shell
 * commands get `bash --norc --noprofile`, sshd has PermitUserRC no; see
 * server/providers/local/jail.ts and docs/proxmox.md §3), so no planted file
 * sees the nonce before the header is out.
 */
import { randomBytes } from "node:crypto";
import { internal, invalidArgument } from "../errors.js";

export interface CommandSpec {
  /** Program and arguments, each passed literally. Exactly one of argv / shell. */
  argv?: readonly string[];
  /** A script for `/bin/bash --norc --noprofile -c` (no rc files, even under sshd). */
  shell?: string;
  env?: Readonly<Record<string, string>>;
  /** Working directory; relative paths are relative to the login user's home. "" = home. */
  cwd?: string;
}

/**
 * Linux limits one argument or environment string to 128 KiB (MAX_ARG_STRLEN)
 * and the whole wrapper travels as one (`bash -c <wrapper>`, and as
 * SSH_ORIGINAL_COMMAND under a ForceCommand).
 */
export const MAX_COMMAND_BYTES = 120_000;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Single-quotes for POSIX sh: nothing inside '...' is special except ' itself. */
export function quote(s: string): string {
  return "'" + s.replace(/'/g, "'\\''") + "'";
}

function noNul(field: string, value: string): void {
  if (value.includes("\0")) throw invalidArgument(field, "must not contain NUL bytes");
}

/**
 * Marks the command with its SSH session: "<sshd pid>:<command pid>". sshd
 * does not signal a session's command when the connection dies (sandboxd
 * killed), so it would run on unowned; a restarted sandboxd finds such
 * commands by this mark (their parent is no longer that sshd) and kills
 * their process groups (server/sandboxes/recovery-tidy.ts). Free per exec:
 * no process watches the session.
 */
export const SESSION_MARK = "SANDBOXD_SESSION";

/**
 * First line of every command sandboxd sends (a comment to the shell). A
 * sandbox may treat such commands specially: the local runtime lets them
 * choose when to join the user cgroup (server/providers/local/jail.ts).
 */
export const COMMAND_MARK = "# sandboxd";

/** The SSH exec command and the secret its header must carry. */
export interface Wrapper {
  command: string;
  nonce: string;
}

/** Bytes of randomness in a header nonce (hex in the header). */
const NONCE_BYTES = 16;

export function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString("hex");
}

export function buildWrapper(spec: CommandSpec, nonce = newNonce()): Wrapper {
  if (!/^[0-9a-f]{32}$/.test(nonce)) throw internal("wrapper nonce must be 32 lowercase hex digits");
  const hasArgv = spec.argv !== undefined && spec.argv.length > 0;
  const hasShell = spec.shell !== undefined && spec.shell !== "";
  if (hasArgv === hasShell) throw invalidArgument("argv", "give exactly one of argv (non-empty) or shell");

  const parts: string[] = [COMMAND_MARK];
  const cwd = spec.cwd ?? "";
  if (cwd !== "") {
    noNul("cwd", cwd);
    const q = quote(cwd);
    // Tell apart why cd failed, so the caller gets a precise error and not a bare exit 1.
    parts.push(
      `CDPATH= cd -- ${q} 2>/dev/null || { if [ -d ${q} ]; then echo 'E cwd-denied ${nonce}'; ` +
        `elif [ -e ${q} ]; then echo 'E cwd-notdir ${nonce}'; else echo 'E cwd-missing ${nonce}'; fi; exit 1; }`,
    );
  }

  const env = Object.entries(spec.env ?? {});
  if (env.length > 0) {
    for (const [name, value] of env) {
      if (!ENV_NAME.test(name)) throw invalidArgument("env", `invalid variable name ${JSON.stringify(name)}`);
      if (typeof value !== "string") throw invalidArgument(`env.${name}`, "must be a string");
      noNul(`env.${name}`, value);
    }
    parts.push("export " + env.map(([k, v]) => `${k}=${quote(v)}`).join(" "));
  }

  parts.push(`export ${SESSION_MARK}="$PPID:$$"`);
  parts.push(`printf 'P%d ${nonce}\\n' $$`);
  // Only now join the sandbox's user cgroup, if the sandbox offers one (SANDBOXD_JOIN,
  // set for lines starting "# sandboxd"): under a fork bomb the header still comes at once.
  parts.push('for f in ${SANDBOXD_JOIN-}; do echo $$ > "$f"; done 2>/dev/null; unset SANDBOXD_JOIN');

  if (hasArgv) {
    spec.argv!.forEach((a, i) => {
      if (typeof a !== "string") throw invalidArgument(`argv[${i}]`, "must be a string");
      noNul(`argv[${i}]`, a);
    });
    if (spec.argv![0] === "") throw invalidArgument("argv[0]", "must not be empty");
    parts.push("exec " + spec.argv!.map(quote).join(" "));
  } else {
    noNul("shell", spec.shell!);
    // --norc: bash sources ~/.bashrc when it sees SSH_CLIENT (Debian's SSH_SOURCE_BASHRC), even for -c.
    parts.push("exec /bin/bash --norc --noprofile -c " + quote(spec.shell!));
  }

  const wrapper = parts.join("\n");
  const size = Buffer.byteLength(wrapper);
  if (size > MAX_COMMAND_BYTES) {
    throw invalidArgument(
      hasArgv ? "argv" : "shell",
      `command line too long (${size} bytes with env and cwd, max ${MAX_COMMAND_BYTES}); pass large data via stdin`,
    );
  }
  return { command: wrapper, nonce };
}

export type WrapperHeader =
  | { kind: "started"; pid: number }
  | { kind: "cwd-missing" | "cwd-notdir" | "cwd-denied" };

/** The header line's longest valid form ("P" + pid + " " + nonce; "E cwd-…" is shorter), with room to spare. */
export const MAX_HEADER_BYTES = 256;

/**
 * Parses the wrapper's first stdout line (without its newline). Anything but
 * a header carrying this exec's nonce is refused: something else wrote first
 * (a shell that is not POSIX, or something of the sandbox's own).
 */
export function parseHeader(line: string, nonce: string): WrapperHeader {
  const m = /^(?:P(\d{1,10})|E (cwd-missing|cwd-notdir|cwd-denied)) ([0-9a-f]{32})$/.exec(line);
  if (m && m[3] === nonce) {
    if (m[2] !== undefined) return { kind: m[2] as "cwd-missing" | "cwd-notdir" | "cwd-denied" };
    const pid = Number(m[1]);
    if (pid > 1) return { kind: "started", pid };
  }
  throw internal(
    `the command wrapper's header is missing or not this exec's (got ${JSON.stringify(line.slice(0, 80))}); ` +
      "something in the sandbox wrote before it, or the sandbox's /bin/sh is not POSIX",
  );
}

/**
 * Kills a command's whole process group (the wrapper made its pid the pgid).
 * `kill -SIG -<pgid>`, not `kill -SIG -- -<pgid>`: dash (the sandboxes' /bin/sh)
 * has no `--` and reads a negative number after the signal as a process group.
 */
export function killGroupCommand(pgid: number, signal = "KILL"): string {
  if (!Number.isInteger(pgid) || pgid <= 1) throw internal(`refusing to signal process group ${pgid}`);
  if (!/^[A-Z0-9]+$/.test(signal)) throw internal(`bad signal name ${signal}`);
  return `${COMMAND_MARK} control\nkill -${signal} -${pgid}`;
}

/**
 * The jail: sshd inside bubblewrap inside the sandbox's network namespace.
 *
 * One detached process chain (setsid, no --die-with-parent: sandboxes outlive
 * a runtime restart), no fork until the cgroups are joined:
 *   unshare --mount --propagation slave   private mount namespace for the disk mount
 *   nsenter --net=/run/netns/<ns>         the sandbox's network
 *   sh -c LAUNCHER                        joins the cgroups, disables IPv6, mounts the disk
 *   bwrap ... sshd -D -e                  pid/ipc/uts/mount namespaces, read-only host root
 * sshd's stderr goes to sshd.log in the sandbox's state dir.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs, openSync, closeSync } from "node:fs";
import net from "node:net";
import { HOST_PATH, readText, sleep } from "./host.js";

/** Where the sandbox's ssh directory is bound inside the jail (/run is a fresh tmpfs there). */
const JAIL_SSH_DIR = "/run/sandboxd/ssh";
/** Where the user cgroup's procs files are bound (one per hierarchy: 0, 1, ...). */
const JAIL_JOIN_DIR = "/run/sandboxd/join";

const LAUNCHER = `set -e
for f in $SANDBOXD_CGROUPS; do echo $$ > "$f"; done
echo 0 > /proc/self/oom_score_adj
for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6; do
  if [ -e "$f" ]; then echo 1 > "$f"; fi
done
# (this namespace only) the host must stay the next hop: no redirect may point past it
for f in /proc/sys/net/ipv4/conf/*/accept_redirects; do echo 0 > "$f"; done
mount -o loop,nosuid,nodev,noatime,noinit_itable "$SANDBOXD_DISK" "$SANDBOXD_MNT"
exec bwrap "$@"
`;

/**
 * ForceCommand of every session: join the user cgroup (see cgroups.ts), then
 * run the client's command (or a login shell, or the sftp subsystem's
 * command). `exec` keeps this pid, which sshd made a session and
 * process-group leader, so the data plane's `kill -KILL -- -<pid>` reaches
 * the whole command. Sessions raise their OOM score (allowed unprivileged)
 * so a memory hog, not sshd, is the OOM killer's pick even where sshd cannot
 * lower its own (no CAP_SYS_RESOURCE).
 *
 * sandboxd's own commands (first line "# sandboxd", see server/ssh/command-line.ts)
 * place themselves: an Exec's wrapper joins once it has printed its header,
 * so under a fork bomb the Exec still starts at once (sshd's CPU share, the
 * pids reserve); a control command (the kill of a cancelled Exec) never
 * joins, so it runs at once too. Everything else joins before it runs.
 */
export function enterScript(joinFiles: number): string {
  const join = Array.from({ length: joinFiles }, (_, i) => `${JAIL_JOIN_DIR}/${i}`).join(" ");
  return `#!/bin/sh
JOIN="${join}"
join() { for f in $JOIN; do echo $$ > "$f"; done 2>/dev/null; }
echo 500 > /proc/self/oom_score_adj 2>/dev/null
if [ -n "\${SSH_ORIGINAL_COMMAND+set}" ]; then
  cmd=$SSH_ORIGINAL_COMMAND; unset SSH_ORIGINAL_COMMAND
  case $cmd in
    "# sandboxd"*) export SANDBOXD_JOIN="$JOIN" ;;
    *) join ;;
  esac
  exec /bin/bash -c "$cmd"
fi
join
exec /bin/bash -l
`;
}

export function sshdConfig(address: string): string {
  return `# Written by sandboxd for one sandbox.
ListenAddress ${address}:22
HostKey ${JAIL_SSH_DIR}/host_ed25519
AuthorizedKeysFile ${JAIL_SSH_DIR}/authorized_keys
AllowUsers sandbox
PermitRootLogin no
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
UsePAM no
PidFile /run/sshd.pid
MaxStartups 100:30:200
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowAgentForwarding no
PermitUserEnvironment no
Subsystem sftp /usr/lib/openssh/sftp-server
ForceCommand ${JAIL_SSH_DIR}/enter
`;
}

export async function writeSshFiles(
  sshDir: string,
  files: { address: string; hostPrivateKey: string; authorizedKey: string; joinFiles: number },
): Promise<void> {
  await fs.mkdir(sshDir, { mode: 0o755 });
  await Promise.all([
    fs.writeFile(`${sshDir}/host_ed25519`, files.hostPrivateKey, { mode: 0o600 }),
    fs.writeFile(`${sshDir}/authorized_keys`, `${files.authorizedKey}\n`, { mode: 0o644 }),
    fs.writeFile(`${sshDir}/sshd_config`, sshdConfig(files.address), { mode: 0o644 }),
    fs.writeFile(`${sshDir}/enter`, enterScript(files.joinFiles), { mode: 0o755 }),
  ]);
}

/** What sshd needs (bind 22, switch user, privsep chroot, own its ptys, OOM protection), by capability bit. */
const SSHD_CAPS: Record<string, number> = {
  CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_FOWNER: 3, CAP_KILL: 5, CAP_SETGID: 6, CAP_SETUID: 7,
  CAP_NET_BIND_SERVICE: 10, CAP_SYS_CHROOT: 18, CAP_SYS_RESOURCE: 24, CAP_AUDIT_WRITE: 29,
};

/**
 * The caps to keep, limited to our own bounding set: bwrap silently keeps ALL
 * capabilities when asked to add one the bounding set lacks (seen with
 * CAP_SYS_RESOURCE on a host that withholds it).
 */
async function jailCaps(): Promise<string[]> {
  const status = (await readText("/proc/self/status")) ?? "";
  const bnd = BigInt(`0x${/^CapBnd:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? "0"}`);
  return Object.entries(SSHD_CAPS).filter(([, bit]) => (bnd >> BigInt(bit)) & 1n).map(([name]) => name);
}

export interface JailSpec {
  id: string;
  netnsPath: string;
  image: string;
  mnt: string;
  sshDir: string;
  logPath: string;
  cgroupProcs: string[];
  /** The user cgroup's procs files, bound into the jail for sessions to join it. */
  userProcs: string[];
  /** Host directories masked with an empty tmpfs inside the jail (the state dir). */
  hide: string[];
}

export async function spawnJail(spec: JailSpec): Promise<ChildProcess> {
  const caps = await jailCaps();
  const bwrap = [
    "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--hostname", spec.id,
    "--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
    // sshd lowers its own oom_score_adj to -1000 only when asked; its sessions get 0 back.
    "--setenv", "SSHD_OOM_ADJUST", "-1000",
    "--cap-drop", "ALL", ...caps.flatMap((c) => ["--cap-add", c]),
    "--ro-bind", "/", "/",
    ...spec.hide.flatMap((d) => ["--tmpfs", d]),
    "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm", "--proc", "/proc",
    "--bind", `${spec.mnt}/home`, "/home",
    "--bind", `${spec.mnt}/tmp`, "/tmp",
    "--tmpfs", "/run", "--dir", "/run/sshd", "--dir", "/run/sandboxd",
    "--ro-bind", spec.sshDir, JAIL_SSH_DIR,
    "--dir", JAIL_JOIN_DIR,
    ...spec.userProcs.flatMap((f, i) => ["--bind", f, `${JAIL_JOIN_DIR}/${i}`]),
    "/usr/sbin/sshd", "-D", "-e", "-f", `${JAIL_SSH_DIR}/sshd_config`,
  ];
  const log = openSync(spec.logPath, "a", 0o600);
  try {
    const child = spawn(
      "unshare",
      ["--mount", "--propagation", "slave", "--", "nsenter", `--net=${spec.netnsPath}`, "--",
        "/bin/sh", "-c", LAUNCHER, "sandboxd-jail", ...bwrap],
      {
        detached: true,
        stdio: ["ignore", log, log],
        env: {
          PATH: HOST_PATH,
          SANDBOXD_CGROUPS: spec.cgroupProcs.join(" "),
          SANDBOXD_DISK: spec.image,
          SANDBOXD_MNT: spec.mnt,
        },
      },
    );
    child.unref();
    return child;
  } finally {
    closeSync(log);
  }
}

/** One attempt: connects to address:22 and waits for an SSH banner. */
export function sshdAnswers(address: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: address, port: 22 });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    let got = "";
    sock.on("data", (b: Buffer) => {
      got += b.toString("latin1");
      if (got.includes("\n")) done(got.startsWith("SSH-2.0-"));
    });
    sock.on("error", () => done(false));
    sock.on("close", () => done(false));
  });
}

/**
 * Polls until sshd answers. Fails early if the launcher exits (its log says
 * why), when `signal` aborts, or after timeoutMs.
 */
export async function waitForSshd(
  address: string,
  child: ChildProcess,
  logPath: string,
  signal: AbortSignal,
  timeoutMs = 15_000,
): Promise<void> {
  let exited: string | undefined;
  const onExit = (code: number | null, sig: string | null) => (exited = sig ?? `exit ${code}`);
  child.once("exit", onExit);
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      signal.throwIfAborted();
      if (exited) throw new Error(`jail exited (${exited}): ${((await readText(logPath)) ?? "").trim().slice(-2000)}`);
      if (await sshdAnswers(address, 500)) return;
      if (Date.now() > deadline) throw new Error(`sshd did not answer within ${timeoutMs} ms`);
      await sleep(3);
    }
  } finally {
    child.off("exit", onExit);
  }
}

/** Among the given pids, the jail's init: the process that is pid 1 of its pid namespace (NSpid ends in 1). */
export async function findJailInit(pids: number[]): Promise<number | undefined> {
  for (const pid of pids) {
    const status = (await readText(`/proc/${pid}/status`)) ?? "";
    const ns = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
    if (ns && ns.length === 2 && ns[1] === "1") return pid;
  }
  return undefined;
}

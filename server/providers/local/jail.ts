/**
 * The jail: sshd inside bubblewrap inside the sandbox's network namespace.
 *
 * One detached process chain (setsid, no --die-with-parent: sandboxes outlive
 * a runtime restart), no fork until the cgroups are joined:
 *   unshare --mount --propagation slave   private mount namespace for the disk mount
 *   nsenter --net=/run/netns/<ns>         the sandbox's network
 *   sh -c LAUNCHER                        joins the cgroups, disables IPv6, mounts the disk,
 *                                         then waits for the two below
 *   setpriv --reuid=<base>                the sandbox's host root uid, no capabilities
 *   bwrap ... sshd -D -e                  user/pid/ipc/uts/mount namespaces, seccomp filter
 *   head -c SSHD_LOG_CAP; cat             sshd.log's writer (host root, in the sandbox's cgroups)
 *
 * The user namespace maps uids and gids 0-65535 inside to the sandbox's own
 * host range (uids.ts): root inside is an unprivileged uid outside. bwrap
 * creates it and waits (--userns-block-fd) while sandboxd, root on the host,
 * writes the maps (mapUserns): as an unprivileged process bwrap could only map
 * one uid, and as root it would map root. The root is curated (jail-root.ts):
 * /usr and the instance's /etc read-only, the disk's /home, /tmp and
 * /var/tmp, fresh /dev, /proc and /run; no host sysfs, cgroup tree, state dir
 * or socket. The seccomp filter (seccomp-filter.py) applies to sshd and all
 * it starts; capabilities are dropped to what sshd needs, in its namespace.
 * Port 22 is bound without CAP_NET_BIND_SERVICE in the network namespace
 * (which belongs to the host's user namespace): the launcher lowers that
 * namespace's ip_unprivileged_port_start to 22.
 *
 * sshd's stderr, and bwrap's, go to sshd.log in the sandbox's state dir, at
 * most SSHD_LOG_CAP bytes of it: what a sandbox makes sshd log (connections,
 * failed handshakes) can grow the host's disk by no more. Past the cap the
 * rest of sshd's messages are dropped.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs, openSync, closeSync } from "node:fs";
import net from "node:net";
import type { Readable, Writable } from "node:stream";
import { HOST_PATH, readText, sleep } from "./host.js";
import { UID_RANGE } from "./uids.js";

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
# (this namespace only) sshd is root in the jail's user namespace, nobody in this network namespace's:
# let it bind port 22 without CAP_NET_BIND_SERVICE
echo 22 > /proc/sys/net/ipv4/ip_unprivileged_port_start
mount -o loop,nosuid,nodev,noatime,noinit_itable "$SANDBOXD_DISK" "$SANDBOXD_MNT"
# sshd.log (our stdout) gets the first SANDBOXD_LOG_CAP bytes of the jail's output, the rest is read and dropped.
# bwrap alone keeps fds 3 and 4 (sandboxd reads fd 3 to its end).
setpriv --reuid="$SANDBOXD_UID" --regid="$SANDBOXD_UID" --clear-groups -- bwrap "$@" 5< "$SANDBOXD_SECCOMP" 2>&1 </dev/null |
  { exec 3>&- 4>&-; head -c "$SANDBOXD_LOG_CAP"; exec cat >/dev/null; } &
exec 3>&- 4>&-
wait
`;

/** Bytes of sshd's (and bwrap's) output kept in a sandbox's sshd.log on the host; the rest is dropped. */
export const SSHD_LOG_CAP = 128 * 1024;

/**
 * ForceCommand of every session: join the user cgroup (see cgroups.ts), then
 * run the client's command (or a login shell, or the sftp subsystem's
 * command). `exec` keeps this pid, which sshd made a session and
 * process-group leader, so the data plane's `kill -KILL -<pid>` reaches
 * the whole command. Sessions raise their OOM score (allowed unprivileged)
 * so a memory hog, not sshd, is the OOM killer's pick even where sshd cannot
 * lower its own (no CAP_SYS_RESOURCE).
 *
 * sandboxd's own commands (first line "# sandboxd", see server/ssh/command-line.ts)
 * place themselves: an Exec's wrapper joins once it has printed its header,
 * so under a fork bomb the Exec still starts at once (sshd's CPU share, the
 * pids reserve); a control command (the kill of a cancelled Exec) never
 * joins, so it runs at once too. Everything else joins before it runs.
 *
 * Nothing the sandbox can write runs before sandboxd's wrapper: sshd starts
 * this script with the login shell, `/bin/sh -c` (SANDBOX_SHELL in host.ts:
 * bash would source ~/.bashrc under sshd even for -c; dash reads nothing),
 * sandboxd's commands go to /bin/sh, the sftp subsystem execs sftp-server
 * itself (no shell, so the sandbox cannot put its own server in), and
 * anything else gets bash without rc files. Only an interactive login (no
 * command, never sandboxd's) runs `bash -l`. The ForceCommand is `exec
 * enter`: dash (unlike bash) forks for a lone -c command, and the session
 * leader must be the command's own pid.
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
    "# sandboxd"*) export SANDBOXD_JOIN="$JOIN"; exec /bin/sh -c "$cmd" ;;
    /usr/lib/openssh/sftp-server) join; exec /usr/lib/openssh/sftp-server ;;
    *) join; exec /bin/bash --norc --noprofile -c "$cmd" ;;
  esac
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
# Nothing the sandbox writes may run or set the environment before sandboxd's
# wrapper (~/.ssh/rc, ~/.ssh/environment), and sessions carry no tunnels.
PermitUserRC no
PermitUserEnvironment no
DisableForwarding yes
AllowTcpForwarding no
AllowStreamLocalForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
Subsystem sftp /usr/lib/openssh/sftp-server
# sshd runs this with \`<login shell> -c\`: dash forks for a lone command, exec keeps sshd's session leader.
ForceCommand exec ${JAIL_SSH_DIR}/enter
`;
}

/** The ssh directory, owned by `rootUid` (the sandbox's root: sshd must read the host key, and owns what it reads). */
export async function writeSshFiles(
  sshDir: string,
  files: { address: string; hostPrivateKey: string; authorizedKey: string; joinFiles: number; rootUid: number },
): Promise<void> {
  await fs.mkdir(sshDir, { mode: 0o755 });
  const write = async (name: string, text: string, mode: number) => {
    await fs.writeFile(`${sshDir}/${name}`, text, { mode });
    await fs.chown(`${sshDir}/${name}`, files.rootUid, files.rootUid);
  };
  await Promise.all([
    fs.chown(sshDir, files.rootUid, files.rootUid),
    write("host_ed25519", files.hostPrivateKey, 0o600),
    write("authorized_keys", `${files.authorizedKey}\n`, 0o644),
    write("sshd_config", sshdConfig(files.address), 0o644),
    write("enter", enterScript(files.joinFiles), 0o755),
  ]);
}

/**
 * What sshd needs (switch user, privsep chroot, own its ptys, signal its
 * sessions), by capability bit; all of them only count in the jail's user
 * namespace. Port 22 needs none (see LAUNCHER); OOM protection and audit would
 * need capabilities of the host's namespace, which no jail has.
 */
const SSHD_CAPS: Record<string, number> = {
  CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_FOWNER: 3, CAP_KILL: 5, CAP_SETGID: 6, CAP_SETUID: 7, CAP_SYS_CHROOT: 18,
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
  /** The first host uid (and gid) of the sandbox's range: root inside. */
  uidBase: number;
  /** The instance's jail /etc, seccomp filter and system directories (jail-root.ts). */
  etc: string;
  seccomp: string;
  systemDirs: string[];
}

export async function spawnJail(spec: JailSpec): Promise<ChildProcess> {
  const caps = await jailCaps();
  const bwrap = [
    // fd 3: bwrap tells its child's pid; fd 4: it waits there for the maps (mapUserns); fd 5: the filter.
    "--unshare-user", "--uid", "0", "--gid", "0", "--info-fd", "3", "--userns-block-fd", "4", "--seccomp", "5",
    "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--hostname", spec.id,
    "--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
    "--cap-drop", "ALL", ...caps.flatMap((c) => ["--cap-add", c]),
    ...spec.systemDirs,
    "--ro-bind", spec.etc, "/etc",
    "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm", "--proc", "/proc",
    "--bind", `${spec.mnt}/home`, "/home",
    "--bind", `${spec.mnt}/tmp`, "/tmp",
    "--dir", "/var", "--bind", `${spec.mnt}/tmp`, "/var/tmp",
    "--tmpfs", "/run", "--dir", "/run/sshd", "--dir", "/run/sandboxd",
    "--ro-bind", spec.sshDir, JAIL_SSH_DIR,
    "--dir", JAIL_JOIN_DIR,
    ...spec.userProcs.flatMap((f, i) => ["--bind", f, `${JAIL_JOIN_DIR}/${i}`]),
    "--remount-ro", "/",
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
        stdio: ["ignore", log, log, "pipe", "pipe"],
        env: {
          PATH: HOST_PATH,
          SANDBOXD_CGROUPS: spec.cgroupProcs.join(" "),
          SANDBOXD_DISK: spec.image,
          SANDBOXD_MNT: spec.mnt,
          SANDBOXD_UID: String(spec.uidBase),
          SANDBOXD_SECCOMP: spec.seccomp,
          SANDBOXD_LOG_CAP: String(SSHD_LOG_CAP),
        },
      },
    );
    child.unref();
    return child;
  } finally {
    closeSync(log);
  }
}

/**
 * Writes the jail's user namespace maps: 0-65535 inside to the sandbox's host
 * range, uids and gids (setgroups stays allowed: sshd sets its sessions'
 * groups). bwrap (fd 3 of the launcher) reports the pid of its child, already
 * in the new namespace, then waits on fd 4 until the maps are there. Fails if
 * the launcher exits first (its log says why) or `signal` aborts.
 */
export async function mapUserns(child: ChildProcess, uidBase: number, logPath: string, signal: AbortSignal): Promise<void> {
  const info = child.stdio[3] as Readable;
  const block = child.stdio[4] as Writable;
  try {
    const pid = await new Promise<number>((resolve, reject) => {
      let text = "";
      const done = (err?: Error, pid?: number) => {
        info.off("data", onData);
        info.off("end", onEnd);
        child.off("exit", onExit);
        signal.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve(pid!);
      };
      // Read to the end: closing our side while bwrap still writes would kill it (SIGPIPE).
      const onData = (b: Buffer) => void (text += b.toString());
      const onEnd = () => {
        const m = /"child-pid":\s*(\d+)/.exec(text);
        if (m) done(undefined, Number(m[1]));
      };
      const onExit = (code: number | null, sig: string | null) =>
        void readText(logPath).then((log) => done(new Error(`jail exited (${sig ?? `exit ${code}`}): ${(log ?? "").trim().slice(-2000)}`)));
      const onAbort = () => done(signal.reason as Error);
      info.on("data", onData);
      info.once("end", onEnd);
      child.once("exit", onExit);
      signal.addEventListener("abort", onAbort, { once: true });
      if (signal.aborted) onAbort();
    });
    const map = `0 ${uidBase} ${UID_RANGE}\n`;
    await fs.writeFile(`/proc/${pid}/uid_map`, map);
    await fs.writeFile(`/proc/${pid}/gid_map`, map);
    await new Promise<void>((resolve, reject) => block.write("1", (e) => (e ? reject(e) : resolve())));
  } finally {
    info.destroy();
    block.destroy();
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

/**
 * The jail: sshd inside bubblewrap inside the sandbox's network namespace.
 *
 * One detached process chain (setsid, no --die-with-parent: sandboxes outlive
 * a runtime restart), no fork until the cgroups are joined. It starts as soon
 * as the sandbox's cgroups exist, alongside the rest of the build, and waits
 * on its stdin for the build's steps (JailLauncher.release):
 *   unshare --mount --propagation slave   private mount namespace for the disk mount
 *   sh -c LAUNCHER                        joins the cgroups (a first join can wait ~10 ms
 *                                         for the kernel: done while the build runs);
 *                                         "disk": mounts the disk; "net": enters
 *   nsenter --net=/run/netns/<ns>         the sandbox's network (namespace and guard ready)
 *   sh -c JAIL                            disables IPv6 and redirects, then waits for the two below
 *   setpriv --reuid=<base>                the sandbox's host root uid, no capabilities
 *   bwrap ... sshd -D -e                  user/pid/ipc/uts/mount namespaces, seccomp filter
 *   head -c SSHD_LOG_CAP; cat             sshd.log's writer (host root, in the sandbox's cgroups)
 * An end of stdin before "net" (sandboxd gone, build failed) makes it exit.
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
import { openSync, closeSync, writeFileSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { HOST_PATH, readText } from "./host.js";
import { JAIL_JOIN_DIR, JAIL_SSH_DIR } from "./sshd-files.js";
import { UID_RANGE } from "./uids.js";

/** Stage one, in the host's network namespace: cgroups, then the disk, then into the sandbox's namespace ($1 = JAIL). */
const LAUNCHER = `set -e
for f in $SANDBOXD_CGROUPS; do echo $$ > "$f"; done
echo 0 > /proc/self/oom_score_adj
# each step waits for sandboxd's word on stdin; its end instead (build failed, sandboxd gone) stops here
read -r step; [ "$step" = disk ]
mount -o loop,nosuid,nodev,noatime,noinit_itable "$SANDBOXD_DISK" "$SANDBOXD_MNT"
read -r step; [ "$step" = net ]
jail=$1; shift
exec nsenter --net="$SANDBOXD_NETNS" -- /bin/sh -c "$jail" sandboxd-jail "$@" </dev/null
`;

/** Stage two, in the sandbox's network namespace: its sysctls, then the jail itself. */
const JAIL = `set -e
for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6; do
  if [ -e "$f" ]; then echo 1 > "$f"; fi
done
# (this namespace only) the host must stay the next hop: no redirect may point past it
for f in /proc/sys/net/ipv4/conf/*/accept_redirects; do echo 0 > "$f"; done
# (this namespace only) sshd is root in the jail's user namespace, nobody in this network namespace's:
# let it bind port 22 without CAP_NET_BIND_SERVICE
echo 22 > /proc/sys/net/ipv4/ip_unprivileged_port_start
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
export async function jailCaps(): Promise<string[]> {
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
  /** Capabilities sshd keeps (jailCaps(), read once at start). */
  caps: string[];
}

/** The jail's launcher, started early: it goes on with each step of the build it is released for. */
export interface JailLauncher {
  readonly child: ChildProcess;
  /** "disk": the image is made, mount it; "net": namespace, guard and ssh files are ready, start sshd. */
  release(step: "disk" | "net"): Promise<void>;
  /** Stops waiting: the launcher exits at its next step (a failed build). */
  abandon(): void;
}

/** Starts the launcher (synchronously: it should get going before the build's other steps spawn theirs). */
export function spawnJail(spec: JailSpec): JailLauncher {
  const caps = spec.caps;
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
  let child: ChildProcess;
  try {
    child = spawn(
      "unshare",
      ["--mount", "--propagation", "slave", "--", "/bin/sh", "-c", LAUNCHER, "sandboxd-launcher", JAIL, ...bwrap],
      {
        detached: true,
        stdio: ["pipe", log, log, "pipe", "pipe"],
        env: {
          PATH: HOST_PATH,
          SANDBOXD_CGROUPS: spec.cgroupProcs.join(" "),
          SANDBOXD_NETNS: spec.netnsPath,
          SANDBOXD_DISK: spec.image,
          SANDBOXD_MNT: spec.mnt,
          SANDBOXD_UID: String(spec.uidBase),
          SANDBOXD_SECCOMP: spec.seccomp,
          SANDBOXD_LOG_CAP: String(SSHD_LOG_CAP),
        },
      },
    );
    child.unref();
  } finally {
    closeSync(log);
  }
  const steps = child.stdin!;
  // A launcher that exited (its log says why) closes the pipe: that is reported by mapUserns, not here.
  steps.on("error", () => {});
  const gone = async (step: string, cause: Error) =>
    new Error(`jail launcher exited before "${step}": ${((await readText(spec.logPath)) ?? "").trim().slice(-2000)}`, { cause });
  return {
    child,
    release: (step) =>
      new Promise<void>((resolve, reject) => {
        steps.write(`${step}\n`, (e) => (e ? void gone(step, e).then(reject) : resolve()));
        if (step === "net") steps.end();
      }),
    abandon: () => void steps.destroy(),
  };
}

/**
 * Writes the jail's user namespace maps: 0-65535 inside to the sandbox's host
 * range, uids and gids (setgroups stays allowed: sshd sets its sessions'
 * groups). bwrap (fd 3 of the launcher) reports the pid of its child, already
 * in the new namespace, then waits on fd 4 until the maps are there. Fails if
 * the launcher exits first (its log says why) or `signal` aborts. Returns
 * that pid: the jail's init (pid 1 of its pid namespace).
 */
export async function mapUserns(child: ChildProcess, uidBase: number, logPath: string, signal: AbortSignal): Promise<number> {
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
      // It may have exited during the build, before anyone listened.
      else if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode);
    });
    // Synchronously: bwrap waits, and these are two tiny kernel writes.
    const map = `0 ${uidBase} ${UID_RANGE}\n`;
    writeFileSync(`/proc/${pid}/uid_map`, map);
    writeFileSync(`/proc/${pid}/gid_map`, map);
    await new Promise<void>((resolve, reject) => block.write("1", (e) => (e ? reject(e) : resolve())));
    return pid;
  } finally {
    info.destroy();
    block.destroy();
  }
}

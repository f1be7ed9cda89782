/**
 * What sshd inside a jail reads, written by sandboxd into the sandbox's ssh
 * directory (bound read-only at JAIL_SSH_DIR): its config, host key, the
 * authorized key and the ForceCommand script every session runs first.
 */
import { promises as fs } from "node:fs";

/** Where the sandbox's ssh directory is bound inside the jail (/run is a fresh tmpfs there). */
export const JAIL_SSH_DIR = "/run/sandboxd/ssh";
/** Where the user cgroup's procs files are bound (one per hierarchy: 0, 1, ...). */
export const JAIL_JOIN_DIR = "/run/sandboxd/join";

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

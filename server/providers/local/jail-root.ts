/**
 * What every jail of an instance shares, prepared once when the runtime
 * starts, under <stateDir>/jail:
 *   etc/          the jail's /etc: an allow-list of public system files copied
 *                 from the host (loader cache, certificates, shell profiles,
 *                 name service config) and generated passwd/group with
 *                 root, sshd (privilege separation) and sandbox (1001); no
 *                 shadow, no host keys, no host accounts
 *   seccomp.bpf   the seccomp filter (seccomp-filter.py, libseccomp)
 * and the bwrap arguments that lay out a jail's root around them: /usr
 * read-only, the top-level links of a merged /usr, nothing else of the host.
 *
 * The copies are refreshed at every start (files are overwritten in place, so
 * running jails, which bind the directory, see the new ones).
 */
import { promises as fs } from "node:fs";
import { fileURLToPath } from "node:url";
import { run, SANDBOX_SHELL } from "./host.js";
import { SANDBOX_UID } from "./uids.js";

/** Host /etc entries a jail gets (those that exist): public package defaults, no secrets. */
const ETC_ALLOW = [
  "alternatives", "bash.bashrc", "bash_completion", "bash_completion.d", "ca-certificates.conf", "debian_version",
  "gai.conf", "host.conf", "inputrc", "issue", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
  "locale.alias", "locale.conf", "localtime", "login.defs", "magic", "magic.mime", "manpath.config", "mime.types",
  "networks", "os-release", "perl", "profile", "profile.d", "protocols", "python3", "python3.11",
  "python3.12", "python3.13", "resolv.conf", "rpc", "services", "shells", "skel", "terminfo", "timezone", "vim",
  "xattr.conf", "ssh/ssh_config", "ssh/moduli", "ssl/certs", "ssl/openssl.cnf",
];

const SEC_FILTER = fileURLToPath(new URL("./seccomp-filter.py", import.meta.url));
/** Debian's interpreter (python3-seccomp lives in its dist-packages), whatever python3 PATH finds. */
const SYSTEM_PYTHON = "/usr/bin/python3";

function generated(): Record<string, string> {
  const u = SANDBOX_UID;
  return {
    passwd: [
      "root:x:0:0:root:/root:/bin/bash",
      "sshd:x:100:65534::/run/sshd:/usr/sbin/nologin",
      // '*': no password; sshd (UsePAM no) takes it for a usable account, '!' would lock it.
      // The shell is host.ts's choice (sshd runs every session's command with it).
      `sandbox:*:${u}:${u}::/home/sandbox:${SANDBOX_SHELL}`,
      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
      "",
    ].join("\n"),
    group: ["root:x:0:", "tty:x:5:", `sandbox:x:${u}:`, "nogroup:x:65534:", ""].join("\n"),
    "nsswitch.conf": ["passwd: files", "group: files", "shadow: files", "hosts: files dns", "networks: files",
      "protocols: files", "services: files", "ethers: files", "rpc: files", ""].join("\n"),
    hosts: ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback", ""].join("\n"),
    hostname: "sandbox\n",
  };
}

export interface JailRoot {
  /** The jail's /etc. */
  etc: string;
  /** The compiled seccomp filter. */
  seccomp: string;
}

/**
 * bwrap runs as a sandbox's unprivileged root uid and binds the sandbox's
 * disk and ssh dir from the state dir: every directory above them must be
 * searchable by others. Root's directories get o+x (search, never read: what
 * is inside keeps its own modes, and the state dir's files are root's 0600);
 * another owner's must have it already.
 */
async function ensureSearchable(stateDir: string): Promise<void> {
  const parts = stateDir.split("/").filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const dir = `/${parts.slice(0, i).join("/")}`;
    const st = await fs.stat(dir);
    if (st.mode & 0o001) continue;
    if (st.uid === 0) await fs.chmod(dir, (st.mode & 0o7777) | 0o001);
    else throw new Error(`${dir} must be searchable by others (chmod o+x): jails are set up by an unprivileged uid`);
  }
}

export async function prepareJailRoot(stateDir: string): Promise<JailRoot> {
  await ensureSearchable(stateDir);
  const dir = `${stateDir}/jail`;
  const etc = `${dir}/etc`;
  await fs.mkdir(`${etc}/ssh`, { recursive: true, mode: 0o755 });
  await fs.mkdir(`${etc}/ssl`, { recursive: true, mode: 0o755 });
  await Promise.all([dir, etc, `${etc}/ssh`, `${etc}/ssl`].map((d) => fs.chmod(d, 0o755)));
  const present: string[] = [];
  for (const name of ETC_ALLOW) if (await fs.lstat(`/etc/${name}`).then(() => true, () => false)) present.push(name);
  // cp -a keeps links (certificates, alternatives point into /usr, which the jail has); -T copies onto what is there.
  await Promise.all(present.map((name) => run("cp", ["-a", "-T", "--remove-destination", `/etc/${name}`, `${etc}/${name}`])));
  await Promise.all(Object.entries(generated()).map(([name, text]) => fs.writeFile(`${etc}/${name}`, text, { mode: 0o644 }).then(() => fs.chmod(`${etc}/${name}`, 0o644))));
  await fs.rm(`${etc}/shadow`, { force: true });
  const seccomp = `${dir}/seccomp.bpf`;
  await run(SYSTEM_PYTHON, [SEC_FILTER, `${seccomp}.tmp`]);
  await fs.chmod(`${seccomp}.tmp`, 0o600);
  await fs.rename(`${seccomp}.tmp`, seccomp);
  return { etc, seccomp };
}

/** bwrap arguments for the host's top-level system entries: /usr read-only, and bin, sbin, lib* as the host has them (links into /usr, or directories). */
export async function systemDirArgs(): Promise<string[]> {
  const args = ["--ro-bind", "/usr", "/usr"];
  for (const name of ["bin", "sbin", "lib", "lib32", "lib64", "libx32"]) {
    const st = await fs.lstat(`/${name}`).catch(() => undefined);
    if (!st) continue;
    if (st.isSymbolicLink()) args.push("--symlink", await fs.readlink(`/${name}`), `/${name}`);
    else if (st.isDirectory()) args.push("--ro-bind", `/${name}`, `/${name}`);
  }
  return args;
}

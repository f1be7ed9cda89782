/**
 * Attacks on the host from inside real sandboxes (issue 10, findings 3, 4, 6
 * and 9), run through Exec as a sandbox's user would:
 *   - the kernel's surface: new namespaces, keyrings, io_uring, bpf,
 *     perf_event_open, mount; the filter, capabilities and uid map in force;
 *   - the host's files and sockets: the checkout, /root, /etc/shadow, sysfs
 *     and the cgroup tree, UNIX sockets of the host;
 *   - per-user kernel state shared between sandboxes: keyrings, inotify;
 *   - the host-side sshd.log grown by connections made inside.
 * See server/providers/local/jail.ts for the jail these run against.
 */
import { promises as fs } from "node:fs";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SSHD_LOG_CAP } from "../../server/providers/local/jail.js";
import { collectExec, e2eInstance, startE2E, type E2E } from "../e2e/harness.js";

let e: E2E;
let a: string;
let b: string;

const exec = (id: string, value: string) => collectExec(e.grpc.exec({ sandboxId: id, command: { case: "shell", value } }));
const run = async (id: string, value: string) => {
  const r = await exec(id, value);
  expect(r.exited?.exitCode, r.stderr).toBe(0);
  return r.stdout;
};

/** A python3 one-shot that prints `name errno` for each raw syscall (the return value when it succeeds). */
const syscalls = (calls: Record<string, string>) => `python3 - <<'EOF'
import ctypes, ctypes.util
libc = ctypes.CDLL(None, use_errno=True)
S = libc.syscall
S.restype = ctypes.c_long
buf = ctypes.create_string_buffer(256)
def t(name, f):
    ctypes.set_errno(0)
    r = f()
    print(name, "ok" if r >= 0 else ctypes.get_errno())
${Object.entries(calls).map(([n, c]) => `t(${JSON.stringify(n)}, lambda: ${c})`).join("\n")}
EOF`;

const EPERM = "1";
const ENOSYS = "38";

beforeAll(async () => {
  e = await startE2E(14);
  const create = async () => (await e.grpc.createSandbox({})).sandbox!.id;
  [a, b] = await Promise.all([create(), create()]);
}, 60_000);
afterAll(async () => {
  await e?.stop();
});

describe("finding 3: the kernel's surface", () => {
  it("runs under a seccomp filter, with reduced capabilities, as an unprivileged uid of the host", async () => {
    const out = await run(a, "grep -E '^(Seccomp|CapEff|CapBnd|NoNewPrivs):' /proc/self/status; cat /proc/self/uid_map /proc/self/gid_map");
    const field = (k: string) => new RegExp(`^${k}:\\s*(\\S+)`, "m").exec(out)?.[1];
    expect(field("Seccomp")).toBe("2");
    expect(field("NoNewPrivs")).toBe("1");
    expect(BigInt(`0x${field("CapEff")}`)).toBe(0n);
    // Nothing beyond what sshd keeps (chown, dac_override, fowner, kill, setgid, setuid, sys_chroot).
    expect(BigInt(`0x${field("CapBnd")}`) & ~0x400ebn).toBe(0n);
    const maps = out.trim().split("\n").slice(-2).map((l) => l.trim().split(/\s+/).map(Number));
    for (const [inside, outside, count] of maps) {
      expect(inside).toBe(0);
      expect(outside).toBeGreaterThanOrEqual(2 ** 20);
      expect(count).toBe(65536);
    }
  });

  it("cannot make namespaces: unshare -Ur, unshare -n, nested mounts", async () => {
    const out = await run(a, [
      "unshare -Ur true 2>/dev/null; echo userns=$?",
      "unshare -n true 2>/dev/null; echo netns=$?",
      "unshare -Urm sh -c 'mount -t tmpfs none /tmp' 2>/dev/null; echo mount=$?",
      "unshare -Urn ip link add x type dummy 2>/dev/null; echo link=$?",
    ].join("; "));
    for (const k of ["userns", "netns", "mount", "link"]) expect(out).toMatch(new RegExp(`^${k}=[1-9]`, "m"));
  });

  it("refuses keyrings, io_uring, bpf, perf_event_open, mount, userfaultfd, clone3 and the like", async () => {
    const out = await run(a, syscalls({
      // add_key("user", "k", "v", 1, KEY_SPEC_USER_KEYRING)
      add_key: `S(248, b"user", b"k", b"v", 1, -4)`,
      // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1)
      keyctl: `S(250, 0, -3, 1)`,
      request_key: `S(249, b"user", b"k", None, 0)`,
      io_uring_setup: `S(425, 8, buf)`,
      // bpf(BPF_MAP_CREATE, zeroed attr)
      bpf: `S(321, 0, buf, 72)`,
      // perf_event_open(software cpu-clock on this process)
      perf_event_open: `S(298, ctypes.c_char_p(b"\\x01\\x00\\x00\\x00\\x80" + b"\\x00" * 123), 0, -1, -1, 0)`,
      mount: `S(165, b"none", b"/tmp", b"tmpfs", 0, None)`,
      umount2: `S(166, b"/tmp", 2)`,
      unshare: `S(272, 0x10000000)`,
      setns: `S(308, 0, 0)`,
      // userfaultfd(UFFD_USER_MODE_ONLY)
      userfaultfd: `S(323, 1)`,
      open_tree: `S(428, -100, b"/tmp", 1)`,
      fsopen: `S(430, b"tmpfs", 0)`,
      pivot_root: `S(155, b"/tmp", b"/tmp")`,
      syslog: `S(103, 3, buf, 256)`,
      clone3: `S(435, buf, 88)`,
    }));
    const got = Object.fromEntries(out.trim().split("\n").map((l) => l.split(" ")));
    expect(got).toEqual({
      add_key: EPERM, keyctl: EPERM, request_key: EPERM, io_uring_setup: EPERM, bpf: EPERM, perf_event_open: EPERM,
      mount: EPERM, umount2: EPERM, unshare: EPERM, setns: EPERM, userfaultfd: EPERM, open_tree: EPERM, fsopen: EPERM,
      pivot_root: EPERM, syslog: EPERM, clone3: ENOSYS,
    });
  });

  it("still forks, runs threads and traces its own processes", async () => {
    const out = await run(a, `python3 -c 'import os, threading; t = threading.Thread(target=lambda: None); t.start(); t.join(); pid = os.fork()
if pid == 0: os._exit(7)
print(os.waitpid(pid, 0)[1] >> 8)'; sh -c 'echo sub'`);
    expect(out).toBe("7\nsub\n");
  });
});

describe("finding 4: the host's files and sockets", () => {
  const servers: net.Server[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
    for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
  });

  it("sees none of the host's files: the checkout, /root, /etc/shadow, sysfs, the cgroup tree, the state dir", async () => {
    const paths = [process.cwd(), `${process.cwd()}/package.json`, "/root", "/etc/shadow", "/etc/ssh/ssh_host_ed25519_key",
      "/sys/fs/cgroup", "/sys/class/net", "/var/lib/sandboxd", "/run/sandboxd/uid-ranges"];
    const out = await run(a, paths.map((p) => `if cat "${p}" >/dev/null 2>&1 || ls "${p}" >/dev/null 2>&1; then echo "${p} readable"; fi`).join("; "));
    expect(out).toBe("");
  });

  it("sees only its own processes, and not the host-wide kernel tables Docker masks (timers, keys, kernel memory)", async () => {
    const tables = ["/proc/timer_list", "/proc/keys", "/proc/key-users", "/proc/kcore", "/proc/sched_debug", "/proc/latency_stats", "/proc/timer_stats"];
    const out = await run(a, [
      // Unreadable, or (keys) listing only the caller's own, of which it has none.
      ...tables.map((p) => `if [ "$(head -c 4096 "${p}" 2>/dev/null | wc -c)" -gt 0 ]; then echo "${p} shows something"; fi`),
      // pid 1 is the jail's init; the host's processes (sandboxd, the host's sshd) are not there.
      "for p in /proc/[0-9]*; do cat $p/comm 2>/dev/null; done | sort -u | tr '\\n' ' '",
    ].join("; "));
    const lines = out.trim().split("\n");
    expect(lines.slice(0, -1)).toEqual([]);
    const comms = lines.at(-1)!.trim().split(" ");
    expect(comms).toContain("sshd");
    for (const host of ["node", "vitest", "systemd", "init"]) expect(comms).not.toContain(host);
  });

  it("has a curated root: system directories, its own /etc, nothing else of the host", async () => {
    const out = await run(a, "ls -A /; echo ---; cut -d: -f1 /etc/passwd");
    const [top, users] = out.split("---\n");
    expect(top!.trim().split("\n").sort()).toEqual(
      expect.arrayContaining(["bin", "dev", "etc", "home", "proc", "run", "tmp", "usr", "var"]),
    );
    for (const hidden of ["root", "sys", "srv", "opt", "mnt", "work", "boot"]) expect(top!.split("\n")).not.toContain(hidden);
    expect(users!.trim().split("\n").sort()).toEqual(["nobody", "root", "sandbox", "sshd"]);
  });

  it("cannot connect to the host's UNIX sockets, by path or abstract name", async () => {
    const tag = `sandboxd-t-e2e14-${process.pid}`;
    const dir = `/var/tmp/${tag}`;
    dirs.push(dir);
    await fs.mkdir(dir, { recursive: true, mode: 0o755 });
    const paths = [`${dir}/s.sock`, `/run/${tag}.sock`, `/tmp/${tag}.sock`, `\0${tag}`];
    for (const p of paths) {
      if (!p.startsWith("\0")) await fs.rm(p, { force: true });
      const s = net.createServer((c) => c.end("host\n"));
      await new Promise<void>((r) => s.listen(p, r));
      if (!p.startsWith("\0")) {
        dirs.push(p);
        await fs.chmod(p, 0o777);
      }
      servers.push(s);
    }
    const out = await run(a, `python3 - <<'EOF'
import socket
for p in ${JSON.stringify(paths)}:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(p); print("connected", repr(p))
    except OSError:
        pass
EOF`);
    expect(out).toBe("");
  });
});

describe("finding 6: per-user kernel state", () => {
  it("gives each sandbox its own host uid range", async () => {
    const [ma, mb] = await Promise.all([a, b].map((id) => run(id, "cat /proc/self/uid_map")));
    const base = (m: string) => Number(m.trim().split(/\s+/)[1]);
    expect(base(ma!)).not.toBe(base(mb!));
    expect(Math.abs(base(ma!) - base(mb!))).toBeGreaterThanOrEqual(65536);
  });

  it("a key added in one sandbox is not found from another", async () => {
    await exec(a, syscalls({ add_key: `S(248, b"user", b"sandboxd-t-key", b"secret", 6, -4)` }));
    // keyctl(KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", "sandboxd-t-key", 0), and request_key
    const out = await run(b, syscalls({
      search: `S(250, 10, -4, b"user", b"sandboxd-t-key", 0)`,
      request_key: `S(249, b"user", b"sandboxd-t-key", None, 0)`,
    }));
    expect(out).not.toMatch(/ ok$/m);
  });

  it("inotify instances used up in one sandbox do not count against another", async () => {
    // a opens inotify instances until refused and holds them; b then opens 20.
    const fill = exec(a, `python3 -c '
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
n = 0
while libc.inotify_init() >= 0 and n < 100000: n += 1
print(n, ctypes.get_errno()); sys.stdout.flush(); time.sleep(6)'`);
    await new Promise((r) => setTimeout(r, 2500));
    const got = await run(b, `python3 -c '
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print(sum(1 for _ in range(20) if libc.inotify_init() >= 0))'`);
    const filled = (await fill).stdout.trim().split(" ");
    // a hit the per-user limit (128 by default: EMFILE long before its 1024 open files)
    expect(filled[1]).toBe("24");
    expect(Number(filled[0])).toBeLessThan(1000);
    expect(got.trim()).toBe("20");
  });
});

describe("finding 9: host-side files a sandbox can grow", () => {
  it("a flood of connections to sshd from inside does not grow sshd.log past its cap", async () => {
    const log = `/var/lib/sandboxd/${e2eInstance(14).instance}/sandboxes/${a}/sshd.log`;
    // Many connections held open at once: sshd logs each it refuses past MaxStartups, and each it drops.
    const flood = `python3 - <<'EOF'
import socket
me = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); me.connect(("198.18.254.1", 9)); addr = me.getsockname()[0]
for _ in range(4):
    conns = []
    for _ in range(250):
        try:
            s = socket.create_connection((addr, 22), timeout=2); s.send(b"garbage\\r\\n"); conns.append(s)
        except OSError:
            pass
    for s in conns: s.close()
EOF`;
    let size = 0;
    for (let round = 0; round < 40 && size < SSHD_LOG_CAP; round++) {
      await run(a, flood);
      size = (await fs.stat(log)).size;
    }
    expect(size).toBe(SSHD_LOG_CAP);
    await run(a, flood);
    await new Promise((r) => setTimeout(r, 500));
    expect((await fs.stat(log)).size).toBe(SSHD_LOG_CAP);
    // sshd still serves
    expect(await run(a, "echo alive")).toBe("alive\n");
  }, 240_000);
});

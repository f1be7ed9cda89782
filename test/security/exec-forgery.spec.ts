/**
 * Attack: forge the result of sandboxd's commands from files the sandbox
 * writes. sshd runs every session's command through the sandbox user's login
 * shell, and bash sources ~/.bashrc under sshd even for `-c`: a ~/.bashrc
 * printing a fake `P<pid>` header and exiting 0 once made an Exec "succeed"
 * without running, and it could swap the sftp-server too. So: plant every
 * file a shell or sshd might read before sandboxd's wrapper (~/.bashrc,
 * ~/.bash_profile, ~/.bash_login, ~/.profile, ~/.ssh/rc, ~/.ssh/environment
 * with BASH_ENV, ENV and LD_PRELOAD), then check that commands, uploads and
 * downloads are untouched, that none of the files ever ran (each leaves a
 * marker file; the rc files would also record the command line, which holds
 * the header's nonce), and that the sandbox's sshd refuses port forwarding.
 * From inside a real sandbox, on both providers (the Proxmox emulator's
 * containers are local sandboxes).
 */
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "ssh2";
import { ExecExited_Reason } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import type { SshTarget } from "../../server/providers/provider.js";
import { collectExec, PROVIDERS, startE2E, type E2E } from "../e2e/harness.js";

let e: E2E;
let id: string;
const HOME = "/home/sandbox";
const MARKS = `${HOME}/.marks`;

const shell = (value: string) => ({ case: "shell" as const, value });
const argv = (...args: string[]) => ({ case: "argv" as const, value: { args } });

/**
 * What each planted file does if it ever runs: leave a marker (and the
 * command line it sees, nonce included), print a forged header and output,
 * and exit 0 — or, for an SFTP session, exec a fake sftp-server instead.
 */
const EVIL = (name: string) => `mkdir -p ${MARKS}; touch ${MARKS}/${name}
printf '%s\\n' "\${BASH_EXECUTION_STRING-}" "\${SSH_ORIGINAL_COMMAND-}" "$0 $*" >> ${MARKS}/seen
case "\${BASH_EXECUTION_STRING-}\${SSH_ORIGINAL_COMMAND-}" in
  *sftp-server*) exec /bin/cat ;;
esac
printf 'P123\\nforged by ${name}\\n'
exit 0
`;

const PLANT = [
  `rm -rf ${MARKS}; mkdir -p ${HOME}/.ssh; chmod 700 ${HOME}/.ssh`,
  ...[".bashrc", ".bash_profile", ".bash_login", ".profile", ".shrc", ".evil-env", ".ssh/rc"].map(
    (f) => `cat > ${HOME}/${f} <<'EOF'\n${EVIL(f.replace(/[./]/g, "_"))}EOF`,
  ),
  // Read by sshd only with PermitUserEnvironment yes; LD_PRELOAD of a missing object makes ld.so complain on every exec.
  `printf '%s\\n' BASH_ENV=${HOME}/.evil-env ENV=${HOME}/.evil-env LD_PRELOAD=${HOME}/missing-evil.so SHLVL=0 > ${HOME}/.ssh/environment`,
  `chmod 600 ${HOME}/.ssh/environment; chmod 755 ${HOME}/.ssh/rc`,
].join("\n");

function sshTarget(): SshTarget {
  // The test reads the manager's table: the key never leaves sandboxd otherwise.
  const entry = e.server.manager["entries"].get(id);
  if (!entry) throw new Error(`sandbox ${id} not in the manager`);
  return entry.handle.ssh;
}

async function connect(target: SshTarget): Promise<Client> {
  const client = new Client();
  await new Promise<void>((resolve, reject) => {
    client.once("ready", resolve).once("error", reject);
    client.connect({ host: target.host, port: target.port, username: target.username, privateKey: target.privateKey, readyTimeout: 10_000 });
  });
  return client;
}

describe.each(PROVIDERS)("files the sandbox writes cannot forge or hijack sandboxd's sessions (%s)", (provider) => {
  beforeAll(async () => {
    e = await startE2E(11, {}, provider);
    id = (await e.grpc.createSandbox({})).sandbox!.id;
    const r = await collectExec(e.grpc.exec({ sandboxId: id, command: shell(PLANT) }));
    expect(r.exited?.exitCode, r.stderr).toBe(0);
    const check = await collectExec(e.grpc.exec({ sandboxId: id, command: argv("ls", "-A", HOME, `${HOME}/.ssh`) }));
    for (const f of [".bashrc", ".bash_profile", ".profile", "rc", "environment"]) expect(check.stdout).toContain(f);
  });
  afterAll(async () => {
    await e?.stop();
  });

  it("an argv Exec still runs the real command: `false` exits 1 after a real started event", async () => {
    const r = await collectExec(e.grpc.exec({ sandboxId: id, command: argv("false") }));
    expect(r.started?.pid).toBeGreaterThan(1);
    expect(r.started?.pid).not.toBe(123);
    expect(r.exited).toMatchObject({ reason: ExecExited_Reason.EXITED, exitCode: 1 });
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(""); // no ld.so complaint: LD_PRELOAD from ~/.ssh/environment was not applied
  });

  it("a shell Exec gives its own output and exit code", async () => {
    const r = await collectExec(e.grpc.exec({ sandboxId: id, command: shell("echo real; exit 7") }));
    expect(r.started?.pid).toBeGreaterThan(1);
    expect(r.started?.pid).not.toBe(123);
    expect(r.stdout).toBe("real\n");
    expect(r.stderr).toBe("");
    expect(r.exited).toMatchObject({ reason: ExecExited_Reason.EXITED, exitCode: 7 });
  });

  it("a shell Exec's environment carries none of ~/.ssh/environment", async () => {
    const r = await collectExec(e.grpc.exec({ sandboxId: id, command: shell('echo "[${BASH_ENV-}|${ENV-}|${LD_PRELOAD-}]"') }));
    expect(r.stdout).toBe("[||]\n");
  });

  it("Upload and Download talk to the real sftp-server", async () => {
    const data = randomBytes(3 * 2 ** 20 + 17);
    const sha = createHash("sha256").update(data).digest("hex");
    async function* messages() {
      yield { part: { case: "header" as const, value: { sandboxId: id, path: "up/file.bin", makeParents: true } } };
      yield { part: { case: "data" as const, value: data } };
    }
    const up = await e.grpc.upload(messages());
    expect(up.sha256).toBe(sha);
    const parts: Buffer[] = [];
    for await (const m of e.grpc.download({ sandboxId: id, path: `${HOME}/up/file.bin` })) {
      if (m.part.case === "data") parts.push(Buffer.from(m.part.value));
    }
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });

  it("none of the planted files ever ran, so none saw a command line or nonce", async () => {
    // After the Execs, Upload and Download above (and every Exec of beforeAll after planting).
    const r = await collectExec(e.grpc.exec({ sandboxId: id, command: shell(`ls -A ${MARKS} 2>/dev/null; echo end`) }));
    expect(r.stdout).toBe("end\n");
  });

  it("sshd refuses port forwarding: direct-tcpip, streamlocal and remote forwards", async () => {
    // A unix socket that listens in the sandbox for 60 s, like sshd's port 22: only a policy can refuse to reach them.
    const sock = `/tmp/fwd-${randomBytes(4).toString("hex")}.sock`;
    const listen = await collectExec(
      e.grpc.exec({
        sandboxId: id,
        command: shell(
          `python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); time.sleep(60)' ${sock} </dev/null >/dev/null 2>&1 &\n` +
            `for i in $(seq 50); do [ -S ${sock} ] && exit 0; sleep 0.1; done; exit 1`,
        ),
      }),
    );
    expect(listen.exited?.exitCode).toBe(0);
    const target = sshTarget();
    const client = await connect(target);
    try {
      const refusal = (fn: (cb: (err: Error | undefined) => void) => void) =>
        new Promise<Error | undefined>((resolve) => fn((err) => resolve(err)));
      // sshd refuses with "open failed" (the reason code says CONNECT_FAILED either way); an allowed forward would open.
      const tcp = await refusal((cb) => client.forwardOut("127.0.0.1", 40000, target.host, 22, (err, ch) => (ch?.close(), cb(err))));
      expect(tcp?.message).toMatch(/open failed/);
      const unix = await refusal((cb) => client.openssh_forwardOutStreamLocal(sock, (err, ch) => (ch?.close(), cb(err))));
      expect(unix?.message).toMatch(/open failed/);
      // A remote forward (tcpip-forward): sshd answers the global request with a failure.
      const remote = await refusal((cb) => client.forwardIn("127.0.0.1", 0, (err) => cb(err)));
      expect(remote?.message).toMatch(/unable to bind/i);
      // The connection itself still works.
      const ok = await new Promise<number>((resolve, reject) =>
        client.exec("# sandboxd\nexit 5", (err, ch) => (err ? reject(err) : ch.on("exit", (code: number) => resolve(code)).resume())),
      );
      expect(ok).toBe(5);
    } finally {
      client.end();
    }
  });
});

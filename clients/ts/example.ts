// sandboxd end-to-end example client (connect-es over the gRPC protocol, h2c).
//
// Creates a sandbox, streams a few commands (two of them past an output cap),
// leaves a background command and comes back to it by its tag (Attach from
// offset 0, ListCommands, SignalCommand), uploads a file and downloads it back
// (checking size and sha256), uploads a small tree as a tar.gz and downloads it
// back as a tar (UploadArchive, DownloadArchive), destroys the sandbox, prints
// "OK ts".
//
//   npx tsx clients/ts/example.ts --addr 127.0.0.1:8080   (or SANDBOXD_ADDR)
//
// With token authentication on the server, the API token comes from
// SANDBOXD_TOKEN (or --token, which other users can see in ps) and goes out as
// `authorization: Bearer <token>` on every call, streaming ones too (a connect
// interceptor). It is never printed.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  ArchiveFormat,
  ExecExited_Reason,
  OutputLimitAction,
  SandboxService,
  Sandbox_State,
  type CommandRefSchema,
  type DownloadArchiveDone,
  type DownloadDone,
  type DownloadInfo,
  type ExecExited,
  type ExecRequestSchema,
  type UploadArchiveHeaderSchema,
  type UploadArchiveRequestSchema,
  type UploadRequestSchema,
} from "../../gen/ts/sandbox/v1/sandbox_pb.js";

const FILE_SIZE = 3 * 1024 * 1024 + 12345; // a few MiB, not a multiple of the chunk size
const CHUNK = 256 * 1024;
const FILE_PATH = "client-ts/blob.bin";
const TIMEOUT_MS = 300_000;
const OUTPUT_CAP = 64 * 1024; // max_output_bytes of the output-limit steps
const TREE_PATH = "client-ts/tree";
const GREETING = "hello from ts\n";
const TAR_CHUNK = 64 * 1024; // UploadArchive data messages (the server takes up to 4 MiB)

type SandboxClient = Client<typeof SandboxService>;

class Mismatch extends Error {}

/**
 * Sends `authorization: Bearer <token>` with every call, unary and streaming.
 * This example speaks plaintext h2c, fine on loopback; beyond loopback a token
 * must only travel over TLS (an https:// baseUrl).
 */
function bearerToken(token: string): Interceptor {
  const value = `Bearer ${token}`;
  return (next) => (req) => {
    req.header.set("authorization", value);
    return next(req);
  };
}

function check(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Mismatch(msg);
}

// How runExec prints the command's output as it arrives: copied as is, each
// chunk quoted and prefixed with its stream name, or not at all (only collected).
type OutputMode = "raw" | "tagged" | "quiet";

async function runExec(
  client: SandboxClient,
  req: MessageInitShape<typeof ExecRequestSchema>,
  mode: OutputMode,
): Promise<{ stdout: Buffer; stderr: Buffer; exited: ExecExited }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let exited: ExecExited | undefined;
  for await (const res of client.exec(req, { timeoutMs: TIMEOUT_MS })) {
    const ev = res.event;
    switch (ev.case) {
      case "started":
        console.log(`[started exec_id=${ev.value.execId} pid=${ev.value.pid}]`);
        break;
      case "stdout":
        out.push(Buffer.from(ev.value));
        if (mode === "tagged") console.log(`[stdout] ${JSON.stringify(Buffer.from(ev.value).toString("utf8"))}`);
        else if (mode === "raw") process.stdout.write(ev.value);
        break;
      case "stderr":
        err.push(Buffer.from(ev.value));
        if (mode === "tagged") console.log(`[stderr] ${JSON.stringify(Buffer.from(ev.value).toString("utf8"))}`);
        else if (mode === "raw") process.stderr.write(ev.value);
        break;
      case "exited":
        exited = ev.value;
        break;
    }
  }
  check(exited !== undefined, "exec stream ended without an exited event");
  console.log(
    `[exited reason=${ExecExited_Reason[exited.reason]} exit_code=${exited.exitCode ?? "none"} ` +
      `signal=${JSON.stringify(exited.signal)} duration=${Number(exited.duration?.seconds ?? 0n) * 1e3 + (exited.duration?.nanos ?? 0) / 1e6}ms]`,
  );
  return { stdout: Buffer.concat(out), stderr: Buffer.concat(err), exited };
}

function expectExit(e: ExecExited, code: number, what: string): void {
  check(
    e.reason === ExecExited_Reason.EXITED && e.exitCode === code,
    `${what}: exited reason=${ExecExited_Reason[e.reason]} exit_code=${e.exitCode} signal=${JSON.stringify(e.signal)}, want code ${code}`,
  );
}

/** Reads a kept command's stdout from offset 0 until its exit, checking that every chunk's offset continues the previous one. */
async function attach(client: SandboxClient, ref: MessageInitShape<typeof CommandRefSchema>): Promise<{ stdout: Buffer; exited: ExecExited }> {
  const out: Buffer[] = [];
  let size = 0;
  let exited: ExecExited | undefined;
  for await (const res of client.attach({ command: ref }, { timeoutMs: TIMEOUT_MS })) {
    if (res.event.case === "stdout") {
      check(res.offset === BigInt(size), `attach: stdout chunk at offset ${res.offset}, want ${size}`);
      out.push(Buffer.from(res.event.value));
      size += res.event.value.length;
    } else if (res.event.case === "exited") {
      exited = res.event.value;
    }
  }
  check(exited !== undefined, "attach stream ended without an exited event");
  return { stdout: Buffer.concat(out), exited };
}

/**
 * Leaves a stream: aborts it and reads it to its end. (A stream merely left,
 * with `break`, would keep the call's deadline timer, and the process, alive
 * for `timeoutMs`: connect-es clears it only once the stream has ended.)
 */
async function detachFrom(stream: AsyncIterator<unknown>, controller: AbortController): Promise<void> {
  controller.abort();
  try {
    while (!(await stream.next()).done);
  } catch (e) {
    if (!(e instanceof ConnectError && e.code === Code.Canceled)) throw e;
  }
}

/**
 * Starts a background command with a tag, detaches after its first line
 * (cancelling the Exec stream does not stop a background command), sees it
 * running in ListCommands, re-attaches by tag from offset 0 and gets every
 * line and the exit; then ends a second background command, `sleep 60`, with
 * SignalCommand SIGTERM.
 */
async function keptCommands(client: SandboxClient, sandboxId: string): Promise<void> {
  const tag = "counter";
  const detach = new AbortController();
  const stream = client
    .exec(
      { sandboxId, command: { case: "shell", value: "for i in 1 2 3; do echo $i; sleep 1; done" }, background: true, tag },
      { timeoutMs: TIMEOUT_MS, signal: detach.signal },
    )
    [Symbol.asyncIterator]();
  let started: { execId: string; pid: number } | undefined;
  let first: Buffer | undefined;
  try {
    while (first === undefined) {
      const r = await stream.next();
      if (r.done) throw new Mismatch("exec background: stream ended before its first line");
      const ev = r.value.event;
      if (ev.case === "started") started = ev.value;
      else if (ev.case === "stdout") {
        check(r.value.offset === 0n, `exec background: first stdout chunk at offset ${r.value.offset}, want 0`);
        first = Buffer.from(ev.value);
      } else if (ev.case === "stderr") throw new Mismatch(`exec background: unexpected stderr ${JSON.stringify(Buffer.from(ev.value).toString())}`);
      else if (ev.case === "exited") throw new Mismatch(`exec background: exited before its first line (${ExecExited_Reason[ev.value.reason]})`);
    }
  } finally {
    await detachFrom(stream, detach); // leave it running
  }
  check(
    started !== undefined && started.execId !== "" && first !== undefined && first.toString().startsWith("1\n"),
    `exec background: started ${JSON.stringify(started)}, first stdout ${JSON.stringify(first?.toString())}; want an exec id and "1\\n"`,
  );
  console.log(`[background tag=${tag} exec_id=${started.execId} pid=${started.pid}: first line ${JSON.stringify(first.toString())}, detached]`);

  const { commands } = await client.listCommands({ sandboxId }, { timeoutMs: TIMEOUT_MS });
  const listed = commands.filter((c) => c.tag === tag);
  check(
    listed.length === 1 && listed[0]!.execId === started.execId && listed[0]!.running,
    `ListCommands: ${JSON.stringify(listed.map((c) => ({ execId: c.execId, tag: c.tag, running: c.running })))}, want ${started.execId} running with tag ${tag}`,
  );
  console.log(`[list: tag=${tag} running=${listed[0]!.running}, ${listed[0]!.stdoutEnd} stdout bytes so far]`);

  const counted = await attach(client, { sandboxId, command: { case: "tag", value: tag } });
  console.log(`[attach tag=${tag} from offset 0: ${JSON.stringify(counted.stdout.toString())}, exit_code=${counted.exited.exitCode ?? "none"}]`);
  check(counted.stdout.toString() === "1\n2\n3\n", `attach ${tag}: stdout ${JSON.stringify(counted.stdout.toString())}, want "1\\n2\\n3\\n"`);
  expectExit(counted.exited, 0, `attach ${tag}`);

  // A second one, ended by a signal to its process group.
  const sleeper = "sleeper";
  const detachSleeper = new AbortController();
  const sleeping = client
    .exec(
      { sandboxId, command: { case: "argv", value: { args: ["sleep", "60"] } }, background: true, tag: sleeper },
      { timeoutMs: TIMEOUT_MS, signal: detachSleeper.signal },
    )
    [Symbol.asyncIterator]();
  try {
    const r = await sleeping.next();
    check(!r.done && r.value.event.case === "started", `exec sleep: first event ${r.done ? "none" : r.value.event.case}, want started`);
  } finally {
    await detachFrom(sleeping, detachSleeper);
  }
  const ref: MessageInitShape<typeof CommandRefSchema> = { sandboxId, command: { case: "tag", value: sleeper } };
  await client.signalCommand({ command: ref, signal: "SIGTERM" }, { timeoutMs: TIMEOUT_MS });
  const { exited } = await attach(client, ref);
  const ms = Number(exited.duration?.seconds ?? 0n) * 1e3 + (exited.duration?.nanos ?? 0) / 1e6;
  console.log(`[signal SIGTERM to tag=${sleeper}: exited signal=${JSON.stringify(exited.signal)} after ${ms}ms]`);
  check(
    exited.signal === "SIGTERM" && exited.exitCode === undefined,
    `${sleeper}: exited signal=${JSON.stringify(exited.signal)} exit_code=${exited.exitCode}, want ended by SIGTERM`,
  );
}

async function* uploadRequests(
  sandboxId: string,
  data: Buffer,
  sha256: string,
): AsyncGenerator<MessageInitShape<typeof UploadRequestSchema>> {
  yield {
    part: {
      case: "header",
      value: {
        sandboxId,
        path: FILE_PATH,
        mode: 0o644,
        makeParents: true,
        expectedSize: BigInt(data.length),
        expectedSha256: sha256,
      },
    },
  };
  for (let off = 0; off < data.length; off += CHUNK) {
    yield { part: { case: "data", value: data.subarray(off, off + CHUNK) } };
  }
}

interface TarEntry {
  name: string;
  type: string; // typeflag: "0" file, "2" symlink, "5" directory
  mode: number;
  body: Buffer;
  link: string;
}

/**
 * A minimal ustar writer (no tar package here): per entry a 512-byte header
 * and the data padded to 512 bytes, then two zero blocks. Names under 100 bytes.
 */
function ustar(entries: TarEntry[]): Buffer {
  const mtime = Math.floor(Date.now() / 1000);
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const h = Buffer.alloc(512);
    const octal = (off: number, len: number, v: number) => h.write(`${v.toString(8).padStart(len - 1, "0")}\0`, off, len, "ascii");
    h.write(e.name, 0, 100, "utf8");
    octal(100, 8, e.mode);
    octal(108, 8, 0); // uid
    octal(116, 8, 0); // gid
    octal(124, 12, e.body.length);
    octal(136, 12, mtime);
    h.write(e.type, 156, 1, "ascii");
    h.write(e.link, 157, 100, "utf8");
    h.write("ustar\0" + "00", 257, 8, "ascii"); // magic and version
    h.fill(" ", 148, 156); // the checksum is computed with its own field as spaces
    const sum = h.reduce((a, b) => a + b, 0);
    h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
    blocks.push(h, e.body, Buffer.alloc((512 - (e.body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/**
 * A minimal tar reader: name (with the ustar prefix), typeflag, link target and
 * data of each entry, up to the zero block. GNU long names ("L" entries) are
 * left as they are: the tree here has short names.
 */
function untar(tar: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  const text = (off: number, len: number) => {
    const field = tar.subarray(off, off + len);
    const end = field.indexOf(0);
    return field.subarray(0, end < 0 ? len : end).toString("utf8");
  };
  for (let off = 0; off + 512 <= tar.length && tar[off] !== 0; ) {
    // The prefix only in POSIX ustar ("ustar\0"); GNU tar's "ustar  " keeps other fields there.
    const prefix = tar.toString("latin1", off + 257, off + 263) === "ustar\0" ? text(off + 345, 155) : "";
    const size = parseInt(text(off + 124, 12).trim() || "0", 8);
    entries.push({
      name: prefix ? `${prefix}/${text(off, 100)}` : text(off, 100),
      type: text(off + 156, 1) || "0",
      mode: parseInt(text(off + 100, 8).trim() || "0", 8),
      body: tar.subarray(off + 512, off + 512 + size),
      link: text(off + 157, 100),
    });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}

async function* uploadArchiveRequests(
  header: MessageInitShape<typeof UploadArchiveHeaderSchema>,
  data: Buffer,
): AsyncGenerator<MessageInitShape<typeof UploadArchiveRequestSchema>> {
  yield { part: { case: "header", value: header } };
  for (let off = 0; off < data.length; off += TAR_CHUNK) {
    yield { part: { case: "data", value: data.subarray(off, off + TAR_CHUNK) } };
  }
}

/**
 * Uploads a tar.gz of src/, src/main.txt, the executable src/run.sh and the
 * symlink src/link to TREE_PATH, checks the tree with a command, downloads it
 * back as a plain tar (checking bytes, sha256 and the entries) and sees a
 * second upload without replace refused with ALREADY_EXISTS.
 */
async function archives(client: SandboxClient, sandboxId: string): Promise<void> {
  const sent: TarEntry[] = [
    { name: "src/", type: "5", mode: 0o755, body: Buffer.alloc(0), link: "" },
    { name: "src/main.txt", type: "0", mode: 0o644, body: Buffer.from(GREETING), link: "" },
    { name: "src/run.sh", type: "0", mode: 0o755, body: Buffer.from("#!/bin/sh\necho ok\n"), link: "" },
    { name: "src/link", type: "2", mode: 0o777, body: Buffer.alloc(0), link: "main.txt" },
  ];
  const tgz = gzipSync(ustar(sent));
  const header: MessageInitShape<typeof UploadArchiveHeaderSchema> = { sandboxId, path: TREE_PATH, format: ArchiveFormat.TAR_GZIP, makeParents: true };
  const ur = await client.uploadArchive(uploadArchiveRequests(header, tgz), { timeoutMs: TIMEOUT_MS });
  check(
    ur.entries === BigInt(sent.length) && ur.archiveBytes === BigInt(tgz.length),
    `UploadArchive: ${ur.entries} entries, ${ur.archiveBytes} archive bytes; want ${sent.length} and ${tgz.length}`,
  );

  const shell = `cat ${TREE_PATH}/src/main.txt && stat -c %a ${TREE_PATH}/src/run.sh && readlink ${TREE_PATH}/src/link`;
  const r = await runExec(client, { sandboxId, command: { case: "shell", value: shell } }, "quiet");
  expectExit(r.exited, 0, "archive check");
  const want = `${GREETING}755\nmain.txt\n`;
  check(r.stdout.toString() === want, `archive check: stdout ${JSON.stringify(r.stdout.toString())}, want ${JSON.stringify(want)}`);

  const chunks: Buffer[] = [];
  let done: DownloadArchiveDone | undefined;
  for await (const msg of client.downloadArchive({ sandboxId, path: TREE_PATH, format: ArchiveFormat.TAR }, { timeoutMs: TIMEOUT_MS })) {
    if (msg.part.case === "data") chunks.push(Buffer.from(msg.part.value));
    else if (msg.part.case === "done") done = msg.part.value;
  }
  check(done !== undefined, "DownloadArchive: stream ended without a done message");
  const tarball = Buffer.concat(chunks);
  const local = createHash("sha256").update(tarball).digest("hex");
  check(
    done.bytes === BigInt(tarball.length) && done.sha256 === local,
    `DownloadArchive: done says ${done.bytes} bytes sha256 ${done.sha256}; received ${tarball.length} bytes sha256 ${local}`,
  );
  const got = untar(tarball);
  const main = got.find((e) => e.name === "./src/main.txt");
  const link = got.find((e) => e.name === "./src/link");
  check(
    main?.type === "0" && main.body.toString() === GREETING && link?.type === "2" && link.link === "main.txt" && done.entries === BigInt(got.length),
    `DownloadArchive: ./src/main.txt ${JSON.stringify(main?.body.toString())}, ./src/link ${JSON.stringify(link && { type: link.type, link: link.link })}, ` +
      `${got.length} entries (done says ${done.entries}); want ${JSON.stringify(GREETING)}, a symlink to main.txt`,
  );

  const again = await client.uploadArchive(uploadArchiveRequests(header, tgz), { timeoutMs: TIMEOUT_MS }).then(
    () => "success",
    (e: unknown) => (e instanceof ConnectError ? Code[e.code] : String(e)),
  );
  check(again === Code[Code.AlreadyExists], `UploadArchive again without replace: ${again}, want AlreadyExists`);
  console.log(
    `[archive: ${ur.entries} entries up (${tgz.length} bytes tar.gz), ${got.length} down (${tarball.length} bytes tar), sha256 ok, ALREADY_EXISTS on re-upload]`,
  );
}

async function scenario(client: SandboxClient): Promise<void> {
  const { sandbox } = await client.createSandbox(
    {
      resources: { cores: 1, memoryMib: 256, diskGib: 1 },
      labels: { client: "ts" },
      leaseTtl: { seconds: 600n },
      requestId: `client-ts-${randomUUID()}`,
    },
    { timeoutMs: TIMEOUT_MS },
  );
  check(sandbox !== undefined && sandbox.id !== "", "CreateSandbox returned no sandbox id");
  const id = sandbox.id;
  console.log(
    `created sandbox ${id} (state ${Sandbox_State[sandbox.state]}, provider ${JSON.stringify(sandbox.provider)}, tenant ${JSON.stringify(sandbox.tenant)})`,
  );
  try {
    check(sandbox.state === Sandbox_State.RUNNING, `sandbox state ${Sandbox_State[sandbox.state]}, want RUNNING`);

    // Renew the lease to 20 minutes: it runs at least that long, at most 1.5 times.
    const before = Date.now();
    const ka = await client.keepAlive({ sandboxId: id, leaseTtl: { seconds: 1200n } }, { timeoutMs: TIMEOUT_MS });
    const exp = Number(ka.leaseExpiresAt!.seconds) * 1000 + Math.floor(ka.leaseExpiresAt!.nanos / 1e6);
    check(exp >= before + 1_200_000 - 1 && exp <= Date.now() + 1_800_000, `KeepAlive: lease expires at ${new Date(exp).toISOString()}, want 20 to 30 minutes from now`);
    console.log(`lease renewed until ${new Date(exp).toISOString()}`);

    // Let it reach one private service (a database on the LAN), then clear the list again.
    const allow = (await client.setEgressAllowlist({ sandboxId: id, entries: ["10.1.2.3:5432"] }, { timeoutMs: TIMEOUT_MS })).sandbox!.egressAllowlist;
    check(allow.length === 1 && allow[0]!.includes("5432"), `SetEgressAllowlist: allowlist ${JSON.stringify(allow)}, want the one entry`);
    const cleared = (await client.setEgressAllowlist({ sandboxId: id, entries: [] }, { timeoutMs: TIMEOUT_MS })).sandbox!.egressAllowlist;
    check(cleared.length === 0, "SetEgressAllowlist: clearing left entries");
    console.log("egress allowlist set and cleared");

    let r = await runExec(client, { sandboxId: id, command: { case: "argv", value: { args: ["uname", "-a"] } } }, "raw");
    expectExit(r.exited, 0, "uname");
    check(r.stdout.length > 0, "uname: no stdout");

    r = await runExec(client, { sandboxId: id, command: { case: "shell", value: "echo out; echo err >&2; exit 3" } }, "tagged");
    expectExit(r.exited, 3, "shell");
    check(
      r.stdout.toString() === "out\n" && r.stderr.toString() === "err\n",
      `shell: stdout ${JSON.stringify(r.stdout.toString())} stderr ${JSON.stringify(r.stderr.toString())}, want "out\\n" and "err\\n"`,
    );

    // Output past max_output_bytes: by default (KILL) the command is killed once
    // it goes past the cap, and exactly the cap's worth of stdout arrives.
    r = await runExec(
      client,
      {
        sandboxId: id,
        command: { case: "argv", value: { args: ["yes", "sandboxd"] } },
        maxOutputBytes: BigInt(OUTPUT_CAP),
        timeout: { seconds: 60n }, // fail fast should the cap not stop it
      },
      "quiet",
    );
    console.log(`[output limit: ${r.stdout.length} bytes, reason=REASON_${ExecExited_Reason[r.exited.reason]}]`);
    check(
      r.exited.reason === ExecExited_Reason.OUTPUT_LIMIT && r.exited.stdoutTruncated && r.stdout.length === OUTPUT_CAP,
      `yes: exited reason=${ExecExited_Reason[r.exited.reason]} signal=${JSON.stringify(r.exited.signal)} ` +
        `stdout_truncated=${r.exited.stdoutTruncated} with ${r.stdout.length} stdout bytes, want OUTPUT_LIMIT, truncated, ${OUTPUT_CAP} bytes`,
    );
    // With DISCARD the rest is dropped and the command runs to its end.
    r = await runExec(
      client,
      {
        sandboxId: id,
        command: { case: "shell", value: "head -c 100000 /dev/zero; echo done >&2" },
        maxOutputBytes: BigInt(OUTPUT_CAP),
        outputLimitAction: OutputLimitAction.DISCARD,
      },
      "quiet",
    );
    console.log(
      `[output limit discard: ${r.stdout.length} bytes, stdout_truncated=${r.exited.stdoutTruncated}, stderr ${JSON.stringify(r.stderr.toString())}]`,
    );
    expectExit(r.exited, 0, "discard");
    check(
      r.exited.stdoutTruncated && r.stdout.length === OUTPUT_CAP && r.stderr.toString() === "done\n",
      `discard: stdout_truncated=${r.exited.stdoutTruncated} with ${r.stdout.length} stdout bytes, ` +
        `stderr ${JSON.stringify(r.stderr.toString())}; want truncated, ${OUTPUT_CAP} bytes, "done\\n"`,
    );

    await keptCommands(client, id);

    const data = randomBytes(FILE_SIZE);
    const want = createHash("sha256").update(data).digest("hex");
    const size = BigInt(data.length);
    const ur = await client.upload(uploadRequests(id, data, want), { timeoutMs: TIMEOUT_MS });
    console.log(`uploaded ${ur.bytesWritten} bytes to ${FILE_PATH}, sha256 ${ur.sha256}`);
    check(
      ur.bytesWritten === size && ur.sha256 === want,
      `upload: server says ${ur.bytesWritten} bytes sha256 ${ur.sha256}, want ${size} ${want}`,
    );

    const h = createHash("sha256");
    let got = 0n;
    let info: DownloadInfo | undefined;
    let done: DownloadDone | undefined;
    for await (const msg of client.download({ sandboxId: id, path: FILE_PATH }, { timeoutMs: TIMEOUT_MS })) {
      switch (msg.part.case) {
        case "info":
          info = msg.part.value;
          break;
        case "data":
          h.update(msg.part.value);
          got += BigInt(msg.part.value.length);
          break;
        case "done":
          done = msg.part.value;
          break;
      }
    }
    const local = h.digest("hex");
    check(info !== undefined && done !== undefined, `download: info present=${info !== undefined} done present=${done !== undefined}`);
    console.log(
      `downloaded ${got} bytes (info size ${info.size} mode ${info.mode.toString(8)}), done sha256 ${done.sha256}, local sha256 ${local}`,
    );
    check(
      info.size === size && got === size && done.bytes === size,
      `download: sizes info ${info.size} received ${got} done ${done.bytes}, want ${size}`,
    );
    check(done.sha256 === want && local === want, `download: sha256 done ${done.sha256} local ${local}, want ${want}`);

    await archives(client, id);
  } finally {
    try {
      await client.destroySandbox({ sandboxId: id }, { timeoutMs: 60_000 });
      console.log(`destroyed sandbox ${id}`);
    } catch (e) {
      console.error(`DestroySandbox ${id}: ${String(e)}`);
    }
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      addr: { type: "string", default: process.env["SANDBOXD_ADDR"] || "127.0.0.1:8080" },
      token: { type: "string" }, // else SANDBOXD_TOKEN; none: no authorization header
    },
  });
  const addr = values.addr ?? "127.0.0.1:8080";
  const token = (values.token || process.env["SANDBOXD_TOKEN"] || "").trim();
  // The gRPC transport of connect-node 2.x always speaks HTTP/2 (h2c for an http:// URL);
  // unlike createConnectTransport it has no httpVersion option.
  const transport = createGrpcTransport({ baseUrl: `http://${addr}`, interceptors: token ? [bearerToken(token)] : [] });
  const client = createClient(SandboxService, transport);
  try {
    await scenario(client);
  } catch (e) {
    if (e instanceof Mismatch) console.error(`FAIL ts: ${e.message}`);
    else if (e instanceof ConnectError) console.error(`FAIL ts: ${Code[e.code]} ${e.rawMessage}`);
    else console.error(`FAIL ts: ${String(e)}`);
    return 1;
  }
  console.log("OK ts");
  return 0;
}

process.exitCode = await main();

/**
 * Attack: the sandbox replaces sbx-run (the kept-command helper sandboxd
 * installed in its home) with its own program. What that program prints is
 * the sandbox's to choose, so sandboxd must treat it as hostile input: an
 * oversized frame, an endless listing or garbage fail the call cleanly
 * (INTERNAL), never grow sandboxd's memory, and the sandbox stays usable.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SBX_RUN_VERSION } from "../../server/ssh/commands/helper.js";
import { collectExec, startE2E, type E2E } from "../e2e/harness.js";

const N = 31;
let e: E2E;
let sandboxId: string;
const HELPER = `$HOME/.sandboxd/bin/sbx-run-${SBX_RUN_VERSION}`;

async function code(p: Promise<unknown>): Promise<string> {
  return p.then(() => "OK", (err: unknown) => Code[ConnectError.from(err).code]);
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) void _;
}

/** Replaces the helper with a shell script whose body is `script`. */
async function replaceHelper(script: string): Promise<void> {
  const b64 = Buffer.from(`#!/bin/sh\n${script}\n`).toString("base64");
  const r = await collectExec(e.grpc.exec({ sandboxId, command: { case: "shell", value: `echo ${b64} | base64 -d > "${HELPER}" && chmod 755 "${HELPER}"` } }));
  expect(r.exited?.exitCode).toBe(0);
}

/** A fake helper that lists one running command "cmd-x" and answers attach with `attach` (shell). */
const listsOne = (attach: string) =>
  `case "$1" in\n  list) printf '{"id":"cmd-x","state":"running","pid":1,"startedAt":1}\\n' ;;\n  attach) ${attach} ;;\nesac`;

beforeAll(async () => {
  e = await startE2E(N);
  sandboxId = (await e.grpc.createSandbox({})).sandbox!.id;
  // The first kept command installs the real helper.
  await drain(e.grpc.exec({ sandboxId, command: { case: "argv", value: { args: ["true"] } }, background: true, tag: "first" }));
}, 60_000);
afterAll(async () => {
  await e?.stop();
});

describe("a helper replaced by the sandbox", () => {
  it("an output frame claiming 4 GiB, then endless bytes: Attach fails with INTERNAL, memory stays flat", async () => {
    await replaceHelper(listsOne(`printf 'O\\000\\000\\000\\000\\000\\000\\000\\000\\377\\377\\377\\377'; exec cat /dev/zero`));
    const before = process.memoryUsage().rss;
    expect(await code(drain(e.grpc.attach({ command: { sandboxId, command: { case: "execId", value: "cmd-x" } } })))).toBe("Internal");
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 2 ** 20);
  });

  it("an endless listing: ListCommands fails with INTERNAL after a bounded read", async () => {
    await replaceHelper(`exec cat /dev/zero`);
    const before = process.memoryUsage().rss;
    expect(await code(e.grpc.listCommands({ sandboxId }))).toBe("Internal");
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 2 ** 20);
  });

  it("garbage frames and a forged exit record are refused; plain Exec still works", async () => {
    await replaceHelper(listsOne(`printf 'Z garbage'`));
    expect(await code(drain(e.grpc.attach({ command: { sandboxId, command: { case: "execId", value: "cmd-x" } } })))).toBe("Internal");
    // An exit record that is not JSON.
    await replaceHelper(listsOne(`printf 'X\\000\\000\\000\\003{{{'`));
    expect(await code(drain(e.grpc.attach({ command: { sandboxId, command: { case: "execId", value: "cmd-x" } } })))).toBe("Internal");
    const r = await collectExec(e.grpc.exec({ sandboxId, command: { case: "shell", value: "echo still here" } }));
    expect(r.stdout).toBe("still here\n");
  });
});

/**
 * The Go, Python and TypeScript client programs against a server with API
 * token authentication (SANDBOXD_AUTH_TOKENS_FILE), started as
 * scripts/start.sh starts it: with SANDBOXD_TOKEN they pass (every call,
 * streaming ones too, carries the token) and their sandboxes belong to the
 * token's tenant; without it, or with a token the file does not hold, they
 * fail with UNAUTHENTICATED. The token never appears in their output.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../server/auth/token-file.js";
import { ROOT, startSandboxd, type SandboxdProcess } from "../fixtures/sandboxd-process.js";

const run = promisify(execFile);

const ENV = {
  SANDBOXD_LOCAL_INSTANCE: "sandboxd-t-clients-auth",
  SANDBOXD_LOCAL_SUBNET: "198.18.231.0/24",
  SANDBOXD_LOG_LEVEL: "info",
};
const TENANT = "clients";

/** This process's environment without any SANDBOXD_* setting (a developer's SANDBOXD_TOKEN must not leak in). */
const baseEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^SANDBOXD?_/.test(k)));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end, resolving also when it exits non-zero. */
async function outcome(file: string, args: string[], env: Record<string, string | undefined>, timeout: number): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(file, args, { cwd: ROOT, env, timeout, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string; killed?: boolean };
    if (typeof err.code !== "number") throw e; // not started, or killed by the timeout
    return { code: err.code, stdout: err.stdout ?? "", stderr: err.stderr ?? "" };
  }
}

let server: SandboxdProcess;
let dir: string;
let token: string;

describe("the client programs with token authentication", () => {
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-clients-auth-"));
    const minted = mintToken(TENANT, "user", "clients-spec");
    token = minted.token;
    const tokensFile = path.join(dir, "tokens");
    fs.writeFileSync(tokensFile, `${minted.line}\n`, { mode: 0o600 });
    server = await startSandboxd({ ...ENV, SANDBOXD_AUTH_TOKENS_FILE: tokensFile });
  });
  afterAll(async () => {
    const code = await server?.stop();
    // Leave no sandbox of this instance behind, whatever happened above.
    await run("node", ["--import", "tsx", "-e",
      `const { LocalRuntime } = await import("./server/providers/local/index.ts");
       const rt = new LocalRuntime({ instance: "${ENV.SANDBOXD_LOCAL_INSTANCE}", subnet: "${ENV.SANDBOXD_LOCAL_SUBNET}" });
       await rt.start(); await rt.purge();`], { cwd: ROOT, timeout: 60_000 });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    expect(code, server?.logs()).toBe(0);
  });

  it("run with SANDBOXD_TOKEN: every client passes and its sandbox is the token's tenant's", async () => {
    const r = await outcome("bash", ["clients/run-all.sh", server.address], { ...baseEnv(), SANDBOXD_TOKEN: token }, 600_000);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    for (const lang of ["go", "python", "ts"]) expect(r.stdout).toContain(`OK ${lang}`);
    expect(r.stdout.match(new RegExp(`created sandbox sbx-\\S+ \\(state \\S*RUNNING, provider "local", tenant "${TENANT}"\\)`, "g")), r.stdout).toHaveLength(3);
    expect(r.stdout + r.stderr).not.toContain(token);
  }, 900_000);

  it("run without a token: every client fails with UNAUTHENTICATED", async () => {
    const r = await outcome("bash", ["clients/run-all.sh", server.address], baseEnv(), 300_000);
    expect(r.code, r.stdout).not.toBe(0);
    for (const lang of ["go", "python", "ts"]) expect(r.stdout).toContain(`=== ${lang} FAILED`);
    expect(r.stderr).toMatch(/FAIL go: CreateSandbox: rpc error: code = Unauthenticated desc = credentials required/);
    expect(r.stderr).toMatch(/FAIL python: StatusCode\.UNAUTHENTICATED credentials required/);
    expect(r.stderr).toMatch(/FAIL ts: Unauthenticated credentials required/);
    expect(r.stderr).toContain("run-all: FAILED: go python ts");
  }, 600_000);

  it("run with a token the file does not hold (--token or SANDBOXD_TOKEN): UNAUTHENTICATED, and the token is not printed", async () => {
    const wrong = mintToken(TENANT, "user", "not-in-the-file").token;
    const bin = path.join(dir, "sandboxd-client-go");
    await run("/usr/local/go/bin/go", ["build", "-o", bin, "."], { cwd: `${ROOT}clients/go`, timeout: 300_000 });
    const go = await outcome(bin, ["--addr", server.address, "--token", wrong], baseEnv(), 60_000);
    expect(go.code).toBe(1);
    expect(go.stderr).toMatch(/FAIL go: CreateSandbox: rpc error: code = Unauthenticated desc = the API token is not valid/);
    const ts = await outcome("npx", ["--no-install", "tsx", "clients/ts/example.ts", "--addr", server.address], { ...baseEnv(), SANDBOXD_TOKEN: wrong }, 120_000);
    expect(ts.code).toBe(1);
    expect(ts.stderr).toMatch(/FAIL ts: Unauthenticated the API token is not valid/);
    const py = await outcome(`${ROOT}.tools/venv/bin/python`, ["-m", "sandboxd_client", "--addr", server.address, "--token", wrong],
      { ...baseEnv(), PYTHONPATH: `${ROOT}clients/python:${ROOT}gen/python` }, 120_000);
    expect(py.code).toBe(1);
    expect(py.stderr).toMatch(/FAIL python: StatusCode\.UNAUTHENTICATED the API token is not valid/);
    for (const r of [go, ts, py]) expect(r.stdout + r.stderr).not.toContain(wrong);
  }, 300_000);
});

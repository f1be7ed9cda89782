/**
 * Issue 14: the Go, Python and TypeScript client libraries, each running its
 * own test suite against a live sandboxd that the suite may crash and restart
 * through test/fixtures/live-server.ts (lease kept alive for many TTLs, a
 * failing block still destroying its sandbox, a restart ridden through, a
 * 200 MB round trip, a resumed download, UTF-8 across chunks, typed errors).
 * The server wants an API token, which each library takes from SANDBOXD_TOKEN.
 * Each suite's output is printed when it fails.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ROOT } from "../fixtures/sandboxd-process.js";
import { startLiveServer } from "../fixtures/live-server.js";
import { tenantTokens } from "../fixtures/tenant-tokens.js";

const run = promisify(execFile);
const PATH = `/usr/local/go/bin:${process.env.PATH}`;

/**
 * Runs `cmd` against a live server (instance n) with token authentication:
 * the suite gets SANDBOXD_ADDR, SANDBOXD_TEST_CONTROL and SANDBOXD_TOKEN, so
 * every call the library makes must carry the token. Fails with the suite's output.
 */
async function suite(n: number, cmd: string, args: string[], cwd = ROOT): Promise<string> {
  const tokens = tenantTokens(["sdk"]);
  const live = await startLiveServer(n, { SANDBOXD_AUTH_TOKENS_FILE: tokens.file });
  try {
    const { stdout, stderr } = await run(cmd, args, {
      cwd, env: { ...process.env, PATH, ...live.env, SANDBOXD_TOKEN: tokens.tokens.sdk! }, timeout: 900_000, maxBuffer: 64 << 20,
    }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`${cmd} ${args.join(" ")} failed: ${err.message}\n${err.stdout ?? ""}\n${err.stderr ?? ""}\n--- sandboxd:\n${live.logs().slice(-20_000)}`);
    });
    return `${stdout}\n${stderr}`;
  } finally {
    await live.stop();
    tokens.remove();
  }
}

describe("client libraries against a live sandboxd", () => {
  it("Go: go vet, then the sandboxd package's tests", async () => {
    await run("go", ["vet", "./..."], { cwd: `${ROOT}clients/go`, env: { ...process.env, PATH }, timeout: 600_000 });
    const out = await suite(40, "go", ["test", "-count=1", "-timeout", "900s", "-v", "./sandboxd/"], `${ROOT}clients/go`);
    expect(out).toMatch(/^ok\s+sandboxd\.dev\/clients\/go\/sandboxd/m);
    expect(out).not.toMatch(/--- SKIP/);
  }, 1_200_000);

  it("Python: mypy --strict, then pytest", async () => {
    await run(`${ROOT}.tools/venv/bin/python`, ["-m", "mypy", "--strict", "-p", "sandboxd"], { cwd: `${ROOT}clients/python`, timeout: 600_000 });
    const out = await suite(41, `${ROOT}.tools/venv/bin/python`, ["-m", "pytest", "-q", "-rs", "clients/python/tests"]);
    expect(out).toMatch(/\d+ passed/);
    expect(out).not.toMatch(/skipped|failed/);
  }, 1_200_000);

  it("TypeScript: tsc strict, then node --test", async () => {
    await run("npx", ["tsc", "-p", "clients/ts", "--noEmit"], { cwd: ROOT, timeout: 600_000 });
    const out = await suite(42, "node", ["--import", "tsx", "--test", "--test-reporter=spec", "clients/ts/test/"]);
    expect(out).toMatch(/ℹ pass [1-9]\d*/);
    expect(out).toMatch(/ℹ fail 0/);
    expect(out).toMatch(/ℹ skipped 0/);
  }, 1_200_000);
});

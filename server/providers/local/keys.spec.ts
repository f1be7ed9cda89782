/** The in-process ed25519 keys load in OpenSSH and ssh2 alike (ssh2's own generator fails ~1 in 150). */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import ssh2 from "ssh2";
import { describe, expect, it } from "vitest";
import { generateEd25519 } from "./keys.js";

const run = promisify(execFile);

describe("generateEd25519", () => {
  it("makes keys OpenSSH and ssh2 both load, public line matching", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sbx-keys-"));
    try {
      for (let i = 0; i < 300; i++) {
        const k = generateEd25519();
        expect(k.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}$/);
        const parsed = ssh2.utils.parseKey(k.privateKey);
        if (parsed instanceof Error) throw parsed;
        expect(parsed.getPublicSSH().toString("base64")).toBe(k.publicKey.split(" ")[1]);
        const file = join(dir, `k${i}`);
        writeFileSync(file, k.privateKey, { mode: 0o600 });
        // Asynchronous, bounded, no stdin: a key OpenSSH could not read makes ssh-keygen ask
        // for a passphrase, which must fail this test, not wait on a terminal.
        const { stdout } = await run("ssh-keygen", ["-y", "-P", "", "-f", file], { timeout: 10_000 });
        expect(stdout.trim().split(" ").slice(0, 2).join(" ")).toBe(k.publicKey);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildWrapper, killGroupCommand, MAX_HEADER_BYTES, newNonce, parseHeader, quote } from "./command-line.js";

const sh = (script: string, env?: NodeJS.ProcessEnv) => execFileSync("/bin/sh", ["-c", script], { env }).toString();

describe("command-line", () => {
  it("single-quotes anything so sh reads it back literally", () => {
    for (const s of ["", "a b", "'", "''", "it's", '"$HOME"', "$(id)", "`id`", "\\", "\n\t", "ünï 😀", "*?[a]", "-n", "a'\\''b"]) {
      expect(sh(`printf %s ${quote(s)}`)).toBe(s);
    }
  });

  it("builds a wrapper that prints the header with its nonce, then execs the argv", () => {
    const w = buildWrapper({ argv: ["printf", "%s|", "a b", "$x"], env: { X: "1 2" }, cwd: "/tmp" });
    expect(w.nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(w.command.startsWith("# sandboxd\n")).toBe(true);
    const out = sh(w.command);
    expect(out).toMatch(new RegExp(`^P\\d+ ${w.nonce}\\na b\\|\\$x\\|$`));
    const s = buildWrapper({ shell: "echo $X; pwd", env: { X: "v'1" }, cwd: "/" });
    expect(sh(s.command)).toMatch(new RegExp(`^P\\d+ ${s.nonce}\\nv'1\\n/\\n$`));
  });

  it("draws a fresh nonce for every wrapper, or takes the one given", () => {
    const a = buildWrapper({ argv: ["true"] });
    const b = buildWrapper({ argv: ["true"] });
    expect(a.nonce).not.toBe(b.nonce);
    const n = newNonce();
    expect(buildWrapper({ argv: ["true"] }, n)).toMatchObject({ nonce: n });
    expect(() => buildWrapper({ argv: ["true"] }, "x")).toThrow(expect.objectContaining({ kind: "internal" }));
  });

  it("runs shell scripts with bash without rc files, even when bash thinks sshd started it", () => {
    const home = mkdtempSync(join(tmpdir(), "wrapper-home-"));
    try {
      writeFileSync(join(home, ".bashrc"), `touch ${home}/bashrc-ran; printf 'P1 %s\\n' "$BASH_EXECUTION_STRING"; exit 0\n`);
      writeFileSync(join(home, ".bash_profile"), `touch ${home}/profile-ran\n`);
      const env = { HOME: home, PATH: "/usr/bin:/bin", SSH_CLIENT: "198.18.0.1 40000 22", SSH_CONNECTION: "x" };
      // Plain `bash -c` under sshd's variables does source ~/.bashrc (Debian's SSH_SOURCE_BASHRC): the check is real.
      expect(execFileSync("/bin/bash", ["-c", "echo plain"], { env }).toString()).toContain("P1 ");
      rmSync(join(home, "bashrc-ran"));
      const w = buildWrapper({ shell: "echo real; exit 7" });
      let out = "";
      let status = 0;
      try {
        out = sh(w.command, env);
      } catch (e) {
        out = String((e as { stdout: Buffer }).stdout);
        status = (e as { status: number }).status;
      }
      expect(status).toBe(7);
      expect(out).toMatch(new RegExp(`^P\\d+ ${w.nonce}\\nreal\\n$`));
      expect(sh(`ls -A ${quote(home)}`).split("\n").filter(Boolean).sort()).toEqual([".bash_profile", ".bashrc"]);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("reports why cd failed, with the nonce", () => {
    const out = (cwd: string) => {
      const w = buildWrapper({ argv: ["true"], cwd });
      try {
        return { nonce: w.nonce, out: sh(w.command) };
      } catch (e) {
        return { nonce: w.nonce, out: String((e as { stdout: Buffer }).stdout) };
      }
    };
    expect(() => sh(buildWrapper({ argv: ["true"], cwd: "/nonexistent-dir" }).command)).toThrow();
    const missing = out("/nonexistent-dir");
    expect(missing.out).toBe(`E cwd-missing ${missing.nonce}\n`);
    const notdir = out("/etc/hostname");
    expect(notdir.out).toBe(`E cwd-notdir ${notdir.nonce}\n`);
  });

  it("parses headers only with this exec's nonce, and rejects garbage", () => {
    const n = newNonce();
    expect(parseHeader(`P123 ${n}`, n)).toEqual({ kind: "started", pid: 123 });
    expect(parseHeader(`E cwd-missing ${n}`, n)).toEqual({ kind: "cwd-missing" });
    const internalError = expect.objectContaining({ kind: "internal" });
    for (const line of ["hello", "P123", `P123 ${newNonce()}`, `P123 ${n} `, ` P123 ${n}`, `P123 ${n.toUpperCase()}`, "E cwd-missing", `E cwd-other ${n}`, `P1 ${n}`, `P0 ${n}`, `P${"9".repeat(30)} ${n}`]) {
      expect(() => parseHeader(line, n), line).toThrow(internalError);
    }
    expect(`P4194304 ${n}`.length).toBeLessThan(MAX_HEADER_BYTES);
  });

  it("only builds kills for real process groups, in a form dash and bash both run", async () => {
    expect(killGroupCommand(42)).toBe("# sandboxd control\nkill -KILL -42");
    expect(() => killGroupCommand(1)).toThrow();
    expect(() => killGroupCommand(0)).toThrow();
    for (const shell of ["/bin/sh", "/bin/bash"]) {
      const victim = spawn("sleep", ["60"], { detached: true, stdio: "ignore" }); // its own process group
      const gone = new Promise((r) => victim.once("exit", (_code, signal) => r(signal)));
      execFileSync(shell, ["-c", killGroupCommand(victim.pid!)]);
      await expect(gone, shell).resolves.toBe("SIGKILL");
    }
  });
});

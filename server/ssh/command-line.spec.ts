import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { buildWrapper, killGroupCommand, parseHeader, quote } from "./command-line.js";

const sh = (script: string) => execFileSync("/bin/sh", ["-c", script]).toString();

describe("command-line", () => {
  it("single-quotes anything so sh reads it back literally", () => {
    for (const s of ["", "a b", "'", "''", "it's", '"$HOME"', "$(id)", "`id`", "\\", "\n\t", "ünï 😀", "*?[a]", "-n", "a'\\''b"]) {
      expect(sh(`printf %s ${quote(s)}`)).toBe(s);
    }
  });

  it("builds a wrapper that prints the header, then execs the argv", () => {
    const w = buildWrapper({ argv: ["printf", "%s|", "a b", "$x"], env: { X: "1 2" }, cwd: "/tmp" });
    const out = sh(w);
    expect(out).toMatch(/^P\d+\na b\|\$x\|$/);
    expect(sh(buildWrapper({ shell: "echo $X; pwd", env: { X: "v'1" }, cwd: "/" }))).toMatch(/^P\d+\nv'1\n\/\n$/);
  });

  it("reports why cd failed", () => {
    expect(() => sh(buildWrapper({ argv: ["true"], cwd: "/nonexistent-dir" }))).toThrow();
    const out = (cwd: string) => {
      try {
        return sh(buildWrapper({ argv: ["true"], cwd }));
      } catch (e) {
        return String((e as { stdout: Buffer }).stdout);
      }
    };
    expect(out("/nonexistent-dir")).toBe("E cwd-missing\n");
    expect(out("/etc/hostname")).toBe("E cwd-notdir\n");
  });

  it("parses headers and rejects garbage", () => {
    expect(parseHeader("P123")).toEqual({ kind: "started", pid: 123 });
    expect(parseHeader("E cwd-missing")).toEqual({ kind: "cwd-missing" });
    expect(() => parseHeader("hello")).toThrow(expect.objectContaining({ kind: "internal" }));
  });

  it("only builds kills for real process groups", () => {
    expect(killGroupCommand(42)).toBe("# sandboxd control\nkill -KILL -- -42");
    expect(() => killGroupCommand(1)).toThrow();
    expect(() => killGroupCommand(0)).toThrow();
  });
});

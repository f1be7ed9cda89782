import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { paxHeader, TAR_END, tarData, tarHeader } from "../../../test/fixtures/tar.js";
import { ArchiveRefusal, BLOCK, TarChecker } from "./tar-check.js";

const header = tarHeader;
const data = tarData;
const end = TAR_END;

function check(...parts: Buffer[]) {
  const c = new TarChecker();
  const all = Buffer.concat(parts);
  // Byte by odd-sized chunks: headers split across chunks must be read the same.
  const entries = [];
  for (let i = 0; i < all.length; i += 333) entries.push(...c.push(all.subarray(i, i + 333)));
  return { c, entries };
}

const dir = mkdtempSync(join(tmpdir(), "sbx-tar-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("TarChecker", () => {
  it("reads what GNU tar writes (long names, symlinks, hard links, pax), chunked at odd sizes", () => {
    const src = join(dir, "src");
    mkdirSync(join(src, "a/b"), { recursive: true });
    writeFileSync(join(src, "a/b/f.txt"), "hello");
    writeFileSync(join(src, `${"x".repeat(150)}.txt`), "long");
    symlinkSync("b/f.txt", join(src, "a/link"));
    execFileSync("ln", [join(src, "a/b/f.txt"), join(src, "a/hard")]);
    for (const format of ["gnu", "pax", "ustar"]) {
      if (format === "ustar") rmSync(join(src, `${"x".repeat(150)}.txt`));
      const tar = execFileSync("tar", ["-c", `--format=${format}`, "-C", src, "."]);
      const { c, entries } = check(tar);
      expect(c.ended).toBe(true);
      const byPath = Object.fromEntries(entries.map((e) => [e.path, e]));
      expect(byPath[""]?.type).toBe("directory");
      expect(byPath["a/b/f.txt"]).toMatchObject({ type: "file", size: 5 });
      expect(byPath["a/link"]).toMatchObject({ type: "symlink", linkTarget: "b/f.txt" });
      expect(Object.values(byPath).some((e) => e.type === "hardlink")).toBe(true);
      if (format !== "ustar") expect(byPath[`${"x".repeat(150)}.txt`]).toMatchObject({ type: "file", size: 4 });
      expect(c.fileBytes).toBe(format === "ustar" ? 5 : 9);
    }
  });

  it.each([
    ["an absolute path", [header("/etc/passwd", "0", 5), data("owned"), end], /absolute/],
    ["a .. component", [header("a/../../etc/passwd", "0", 5), data("owned"), end], /outside the target/],
    ["a leading ..", [header("../x", "5"), end], /outside the target/],
    ["a path through the archive's own symlink", [header("d", "2", 0, "/etc"), header("d/passwd", "0", 5), data("owned"), end], /goes through the symlink "d"/],
    ["a deeper path through it", [header("a/", "5"), header("a/l", "2", 0, "../../.."), header("./a/l/x/y", "0", 1), data("y"), end], /goes through the symlink "a\/l"/],
    ["a directory replacing the symlink", [header("l", "2", 0, "/"), header("l/", "5"), end], /replaces a symlink/],
    ["a hard link to an absolute path", [header("h", "1", 0, "/etc/shadow"), end], /absolute hard link target/],
    ["a hard link with ..", [header("h", "1", 0, "../../x"), end], /outside the target/],
    ["a hard link through a symlink", [header("l", "2", 0, "/etc"), header("h", "1", 0, "l/shadow"), end], /goes through the symlink/],
    ["a device", [header("dev", "3"), end], /not allowed/],
    ["a FIFO", [header("fifo", "6"), end], /not allowed/],
    ["a file as the root", [header(".", "0", 1), data("x"), end], /only a directory/],
  ])("refuses %s", (_what, parts, message) => {
    expect(() => check(...(parts as Buffer[]))).toThrow(message as RegExp);
  });

  it("refuses a GNU long name that hides a .. (the name in the header looks harmless)", () => {
    const name = `${"a/".repeat(60)}../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../x`;
    const tar = execFileSync("tar", ["-c", "--format=gnu", "-P", "--transform", `s|.*|${name}|`, "-C", dir, "src"], { stdio: ["ignore", "pipe", "ignore"] });
    expect(() => check(tar)).toThrow(/outside the target/);
  });

  it("refuses a pax path with .. behind an innocent ustar name", () => {
    expect(() => check(paxHeader("path", "../../etc/cron.d/x"), header("innocent", "0", 1), data("x"), end)).toThrow(/outside the target/);
  });

  it("refuses a corrupt header (not a tar) and a long name over the limit", () => {
    const bad = header("a", "0");
    bad[0] = 0x62;
    expect(() => check(bad)).toThrow(ArchiveRefusal);
    expect(() => check(header("././@LongLink", "L", 2 << 20))).toThrow(/long name of/);
  });

  it("tells a complete archive from one cut off mid-entry or before its end marker", () => {
    const whole = Buffer.concat([header("f", "0", 600), data("y".repeat(600)), end]);
    expect(check(whole).c.ended).toBe(true);
    const mid = check(whole.subarray(0, 700)).c;
    expect([mid.ended, mid.atBoundary]).toEqual([false, false]);
    const noMarker = check(whole.subarray(0, BLOCK * 3)).c;
    expect([noMarker.ended, noMarker.atBoundary]).toEqual([false, true]);
  });

  it("lets devices and FIFOs through when asked (a download of the sandbox's own files)", () => {
    const c = new TarChecker({ allowSpecial: true });
    expect(c.push(Buffer.concat([header("fifo", "6"), end]))).toMatchObject([{ path: "fifo", type: "other" }]);
  });
});

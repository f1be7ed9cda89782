import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { hashToken, mintToken, parseTokenFile, TokenFile } from "./token-file.js";

const quiet = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} } as never;

describe("the token file", () => {
  it("mints 256-bit tokens whose line admits exactly that token", () => {
    const { token, line } = mintToken("agents", "user", "ci");
    expect(token).toMatch(/^sbx_[A-Za-z0-9_-]{43}$/);
    expect(line).toBe(`${hashToken(token)} tenant=agents role=user name=ci`);
    expect(mintToken("agents", "user", "ci").token).not.toBe(token);
  });

  it("skips (and reports by line number) lines that do not parse, keeps the others; never echoes a line's content", () => {
    const good = mintToken("a", "admin", "ops").line;
    const text = [
      "# comment", "", good,
      "sha256:zz tenant=a role=user name=x",
      `${hashToken("t")} tenant=A! role=user name=x`,
      `${hashToken("t")} tenant=a role=root name=x`,
      `${hashToken("t")} tenant=a role=user`,
      `${hashToken("u")} tenant=b role=viewer name=v # trailing comment`,
    ].join("\n");
    const { entries, errors } = parseTokenFile(text);
    expect(entries.map((e) => [e.tenant, e.role, e.name])).toEqual([["a", "admin", "ops"], ["b", "viewer", "v"]]);
    expect(errors).toEqual([
      expect.stringMatching(/^line 4: .*sha256/), expect.stringMatching(/^line 5: tenant/), expect.stringMatching(/^line 6: role/), expect.stringMatching(/^line 7: name/),
    ]);
  });

  it("authenticates by hash, follows edits, and admits nothing when the file is gone", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-tokens-"));
    const file = path.join(dir, "tokens");
    const a = mintToken("a", "user", "alice");
    const b = mintToken("b", "user", "bob");
    fs.writeFileSync(file, `${a.line}\n`);
    const tf = new TokenFile(file, quiet, 50);
    tf.start();
    try {
      expect(tf.authenticate(a.token)).toEqual({ tenant: "a", role: "user", name: "alice", via: "token" });
      expect(tf.authenticate(b.token)).toBeUndefined();
      expect(tf.authenticate("")).toBeUndefined();
      fs.writeFileSync(file, `${b.line}\n`);
      const until = async (ok: () => boolean) => {
        for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
      };
      await until(() => tf.authenticate(b.token) !== undefined);
      expect(tf.authenticate(b.token)?.name).toBe("bob");
      expect(tf.authenticate(a.token)).toBeUndefined();
      fs.rmSync(file);
      await until(() => tf.size === 0);
      expect(tf.authenticate(b.token)).toBeUndefined();
    } finally {
      tf.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

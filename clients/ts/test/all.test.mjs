// Runs every TypeScript test file of this directory in one process, one
// after the other: what `node --import tsx --test clients/ts/test/` finds on
// Node 20, whose directory search only picks up .js/.mjs/.cjs files. (Listing
// the .ts files instead, `--test clients/ts/test/*.test.ts`, runs them in
// parallel processes; helpers.ts serializes the live-server ones.)
import { readdirSync } from "node:fs";

const here = new URL(".", import.meta.url);
for (const f of readdirSync(here).filter((n) => n.endsWith(".test.ts")).sort()) {
  await import(new URL(f, here).href);
}

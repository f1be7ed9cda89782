/**
 * Copies the schemas of PVE_ENDPOINTS out of pve-docs' api-viewer/apidata.js into
 * pve-api-schema.json, so the tests check requests against what Proxmox itself publishes.
 *
 *   node --import tsx test/pve-schema/extract.ts [apidata.js] [--commit SHA] [--pve-version X.Y.Z]
 *
 * Without a file it reads apidata.js at HEAD of the pve-docs git mirror (PVE_DOCS_GIT_DIR),
 * falling back to /tmp/apidata.js. A file is attributed to the mirror's HEAD only when its
 * content is identical; otherwise --commit and --pve-version must say where it comes from.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { PVE_ENDPOINTS } from "./endpoints.js";

const GIT_DIR = process.env.PVE_DOCS_GIT_DIR ?? "/work/.mirror/proxmox+pve-docs/repo";
const FALLBACK = "/tmp/apidata.js";
const APIDATA = "api-viewer/apidata.js";
const OUT = fileURLToPath(new URL("./pve-api-schema.json", import.meta.url));

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface ApiNode {
  path: string;
  info?: Record<string, Record<string, Json>>;
  children?: ApiNode[];
}

function git(...args: string[]): string {
  return execFileSync("git", ["--git-dir", GIT_DIR, ...args], {
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function mirrorHead(): { commit: string; text: string } | undefined {
  try {
    const commit = git("rev-parse", "HEAD").trim();
    return { commit, text: git("show", `${commit}:${APIDATA}`) };
  } catch (err) {
    console.warn(`pve-docs mirror at ${GIT_DIR} not readable: ${(err as Error).message.split("\n")[0]}`);
    return undefined;
  }
}

/** The first line of debian/changelog is "pve-docs (9.1.3) trixie; urgency=medium". */
function pveVersionAt(commit: string): string {
  const first = git("show", `${commit}:debian/changelog`).split("\n", 1)[0] ?? "";
  const m = /^pve-docs \(([^)\s]+)\)/.exec(first);
  if (!m?.[1]) throw new Error(`cannot read the version from debian/changelog at ${commit}: '${first}'`);
  return m[1];
}

function loadSource(file: string | undefined, commitArg?: string, versionArg?: string) {
  const head = commitArg ? undefined : mirrorHead();
  let text: string;
  if (file) text = readFileSync(file, "utf8");
  else if (head) text = head.text;
  else {
    file = FALLBACK;
    text = readFileSync(file, "utf8");
  }
  const commit = commitArg ?? (head && head.text === text ? head.commit : undefined);
  if (!commit) {
    throw new Error(`cannot tell which pve-docs commit ${file} comes from (it is not the mirror's HEAD); pass --commit and --pve-version`);
  }
  const pveVersion = versionArg ?? pveVersionAt(commit);
  return { text, commit, pveVersion };
}

/** apidata.js is `const apiSchema = [ ...JSON... ];` as written by pve-docs' scripts/extractapi.pl. */
function parseApidata(text: string): ApiNode[] {
  const m = /^\s*const apiSchema = ([\s\S]*);\s*$/.exec(text);
  if (!m?.[1]) throw new Error("apidata.js does not have the form 'const apiSchema = [...];'");
  return JSON.parse(m[1]) as ApiNode[];
}

function indexMethods(tree: ApiNode[]): Map<string, Record<string, Json>> {
  const out = new Map<string, Record<string, Json>>();
  const walk = (n: ApiNode): void => {
    for (const [method, info] of Object.entries(n.info ?? {})) out.set(`${method} ${n.path}`, info);
    for (const c of n.children ?? []) walk(c);
  };
  tree.forEach(walk);
  return out;
}

/**
 * Drops documentation text (a `description` / `verbose_description` whose value is a string;
 * a *parameter* named "description" is an object and stays) and sorts object keys so the
 * file diffs cleanly between PVE versions. Array order (enum order) is kept: PVE prints it.
 */
function strip(v: Json): Json {
  if (Array.isArray(v)) return v.map(strip);
  if (v === null || typeof v !== "object") return v;
  const out: Record<string, Json> = {};
  for (const k of Object.keys(v).sort()) {
    const x = v[k] as Json;
    if ((k === "description" || k === "verbose_description") && typeof x === "string") continue;
    out[k] = strip(x);
  }
  return out;
}

/** Named formats (string `format`s) anywhere in a parameter schema, for the summary. */
function namedFormats(s: Json, into: Set<string>): void {
  if (Array.isArray(s)) return s.forEach((x) => namedFormats(x, into));
  if (s === null || typeof s !== "object") return;
  if (typeof s.format === "string" && typeof s.type === "string") into.add(s.format);
  for (const x of Object.values(s)) namedFormats(x, into);
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { commit: { type: "string" }, "pve-version": { type: "string" } },
  });
  if (positionals.length > 1) throw new Error("at most one apidata.js path");
  const src = loadSource(positionals[0], values.commit, values["pve-version"]);
  const methods = indexMethods(parseApidata(src.text));

  const missing = PVE_ENDPOINTS.filter((k) => !methods.has(k));
  if (missing.length > 0) throw new Error(`apidata.js at ${src.commit} lacks: ${missing.join("; ")}`);

  const endpoints: Record<string, Json> = {};
  const formats = new Set<string>();
  for (const key of [...PVE_ENDPOINTS].sort()) {
    const info = methods.get(key)!;
    const entry: Record<string, Json> = {};
    for (const field of ["parameters", "permissions", "protected", "proxyto", "returns"]) {
      if (info[field] !== undefined) entry[field] = strip(info[field]);
    }
    if (!entry.parameters) throw new Error(`${key} has no parameters schema in apidata.js`);
    namedFormats(entry.parameters, formats);
    endpoints[key] = entry;
  }

  const out = {
    endpoints,
    source: { commit: src.commit, path: APIDATA, pveVersion: src.pveVersion, repo: "proxmox/pve-docs" },
  };
  const body = JSON.stringify(out, null, 2) + "\n";
  writeFileSync(OUT, body);
  console.log(`wrote ${OUT}: ${PVE_ENDPOINTS.length} endpoints, ${body.length} bytes, PVE ${src.pveVersion} @ ${src.commit}`);
  console.log(`named formats in parameters: ${[...formats].sort().join(", ")}`);
}

main();

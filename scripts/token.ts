/**
 * `npm run token -- --tenant <t> --name <who> [--role admin|user|viewer] [--file <tokens file>]`:
 * mints an API token, prints it once (it is stored nowhere), and prints the
 * line for the token file, or appends it to --file (sandboxd picks it up
 * within seconds). See README "Authentication and tenants".
 */
import fs from "node:fs";
import { parseArgs } from "node:util";
import { ROLES, TENANT_PATTERN, mintToken, type Role } from "../server/auth/index.js";

const { values } = parseArgs({ options: { tenant: { type: "string" }, name: { type: "string" }, role: { type: "string", default: "user" }, file: { type: "string" } } });
const fail = (m: string): never => {
  process.stderr.write(`token: ${m}\nusage: npm run token -- --tenant <tenant> --name <who> [--role ${ROLES.join("|")}] [--file <tokens file>]\n`);
  process.exit(2);
};
if (!values.tenant || !TENANT_PATTERN.test(values.tenant)) fail(`--tenant: required, ${TENANT_PATTERN}`);
if (!values.name || !/^[A-Za-z0-9._@:/-]{1,128}$/.test(values.name)) fail("--name: required, 1-128 of A-Za-z0-9._@:/-");
if (!ROLES.includes(values.role as Role)) fail(`--role: one of ${ROLES.join(", ")}`);
const { token, line } = mintToken(values.tenant!, values.role as Role, values.name!);
if (values.file) {
  fs.appendFileSync(values.file, `${line}\n`, { mode: 0o600 });
  process.stderr.write(`appended to ${values.file}: ${line}\n`);
} else process.stderr.write(`add to the token file:\n${line}\n`);
process.stdout.write(`${token}\n`);

/**
 * Request-parameter validation as Proxmox VE does it, against the schemas extracted from
 * pve-docs (pve-api-schema.json). A port of pve-common's PVE::JSONSchema (check_prop,
 * check_object, check_type, check_format, parse_property_string; 9.1.11) and of
 * PVE::RESTHandler's normalize_legacy_param_formats, returning PVE's per-parameter messages.
 */
import { readFileSync } from "node:fs";
import { PVE_ENDPOINTS } from "./endpoints.js";
import { Die, NAMED_FORMATS, die, perlTrue, splitList } from "./formats.js";

export interface PropSchema {
  type?: string;
  optional?: number;
  default?: unknown;
  enum?: (string | number)[];
  pattern?: string;
  minimum?: number | string;
  maximum?: number | string;
  minLength?: number;
  maxLength?: number;
  format?: string | Record<string, PropSchema>;
  format_description?: string;
  typetext?: string;
  requires?: string | PropSchema;
  default_key?: number;
  properties?: Record<string, PropSchema>;
  additionalProperties?: number | boolean | PropSchema;
  items?: PropSchema;
}
export type EndpointSchema = { parameters: PropSchema; returns?: unknown; permissions?: unknown; proxyto?: string; protected?: number };
export type SchemaSource = { repo: string; path: string; commit: string; pveVersion: string };

const FILE = JSON.parse(readFileSync(new URL("./pve-api-schema.json", import.meta.url), "utf8")) as {
  source: SchemaSource;
  endpoints: Record<string, EndpointSchema>;
};
export const SCHEMA_SOURCE: SchemaSource = FILE.source;

export function schemaOf(key: string): EndpointSchema | undefined {
  return Object.hasOwn(FILE.endpoints, key) ? FILE.endpoints[key] : undefined;
}

/** Keywords this port implements; anything else (oneOf, alias, extends...) must not pass silently. */
const KEYWORDS = new Set([
  "type", "optional", "default", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength", "format",
  "format_description", "typetext", "requires", "default_key", "properties", "additionalProperties", "items",
]);

/** apidata.js collapses mp0..mp255 into "mp[n]" (RESTHandler api_dump); the counts are
 *  pve-container 6.1.5 Config.pm's MAX_MOUNT_POINTS, MAX_UNUSED_DISKS, MAX_DEVICES, MAX_LXC_NETWORKS. */
const INDEXED_COUNT: Record<string, number> = { mp: 256, unused: 256, dev: 256, net: 32 };

/** A Perl value as JSONSchema.pm sees it: a plain scalar (string) or a reference. */
type PerlRef =
  | { ref: "HASH"; value: Record<string, PV> }
  | { ref: "ARRAY"; value: PV[] }
  | { ref: "JSON::PP::Boolean"; value: boolean };
type PV = string | PerlRef | undefined;
type Errors = Record<string, string>;

/** Form bodies carry strings only (a JS value is taken as its serialisation); a JSON body
 *  decodes true/false to JSON::PP::Boolean refs, objects and arrays to HASH/ARRAY refs. */
function toPerl(v: unknown, form: boolean): PV {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return { ref: "ARRAY", value: v.map((x) => toPerl(x, form)) };
  if (typeof v === "boolean") return form ? String(v) : { ref: "JSON::PP::Boolean", value: v };
  if (typeof v === "object") {
    if (form) throw new Error("a form body cannot carry an object value");
    const value: Record<string, PV> = Object.create(null);
    for (const [k, x] of Object.entries(v)) value[k] = toPerl(x, form);
    return { ref: "HASH", value };
  }
  return String(v);
}

const cpLength = (s: string): number => [...s].length; // Perl length() counts characters
const isInteger = (v: string): boolean => /^[+-]?\d+\n?$/.test(v);
const isNumber = (v: string): boolean => /^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?\n?$/.test(v);
const parseBoolean = (v: string): string | undefined =>
  /^(1|on|yes|true)\n?$/i.test(v) ? "1" : /^(0|off|no|false)\n?$/i.test(v) ? "0" : undefined;

function addError(errors: Errors, path: string, msg: string): void {
  const p = path || "_root";
  // JSONSchema.pm joins with '\n' in single quotes: a literal backslash-n, not a newline.
  errors[p] = errors[p] !== undefined ? `${errors[p]}\\n${msg}` : msg;
}

/** Schema patterns are Perl qr// strings, "(?^:...)"; PVE matches them as m/^$pattern$/. */
function patternRe(pattern: string): RegExp {
  if (/\(\?\^[a-z]/.test(pattern)) throw new Error(`pattern with Perl inline flags not supported: ${pattern}`);
  return new RegExp(`^${pattern.replaceAll("(?^:", "(?:")}\\n?$`);
}

function lookup(props: Record<string, PropSchema>, k: string): PropSchema | undefined {
  if (Object.hasOwn(props, k) && !k.endsWith("[n]")) return props[k];
  const m = /^([a-z]+)(\d+)$/.exec(k);
  const entry = m && Object.hasOwn(props, `${m[1]}[n]`) ? props[`${m[1]}[n]`] : undefined;
  if (!m || !entry) return undefined;
  const count = INDEXED_COUNT[m[1]!];
  if (count === undefined) throw new Error(`no known index range for '${m[1]}[n]'`);
  return String(Number(m[2])) === m[2] && Number(m[2]) < count ? entry : undefined;
}

function checkType(path: string, type: unknown, value: PV & {}, errors: Errors): boolean {
  if (!type || type === "any") return true;
  if (typeof type !== "string") throw new Error(`${path}: union types are not supported`);
  const ref = typeof value === "string" ? undefined : value.ref;
  const fail = (detail = ""): false => (addError(errors, path, `type check ('${type}') failed${detail}`), false);
  if (type === "null") return fail(" - value is not null");
  if (type === "array" || type === "object") return ref === (type === "array" ? "ARRAY" : "HASH") || fail();
  if (ref !== undefined) return (type === "boolean" && ref === "JSON::PP::Boolean") || fail(` - got ${ref}`);
  const v = value as string;
  if (type === "boolean") return v === "1" || v === "0" || fail(` - got '${v}'`); // not yes/true: see check_type
  if (type === "integer") return isInteger(v) || fail(` - got '${v}'`);
  if (type === "number") return isNumber(v) || fail(` - got '${v}'`);
  return true; // 'string', and unknown types, pass in PVE
}

function checkFormat(format: string | Record<string, PropSchema>, value: string, path: string): void {
  if (typeof format === "object") return parsePropertyString(format, value, path);
  if (format === "regex") return;
  const [, name, kind] = /^(.*?)(?:-(list|opt))?$/s.exec(format)!;
  const verify = Object.hasOwn(NAMED_FORMATS, name!) ? NAMED_FORMATS[name!] : undefined;
  if (!verify) throw new Error(`${path}: named format '${format}' is not ported; add its verifier to formats.ts`);
  if (kind === "list") splitList(value).forEach(verify);
  else if (kind === "opt") perlTrue(value) && verify(value);
  else verify(value);
}

/** parse_property_string: "k=v,k=v" with an optional bare value for the default_key. */
function parsePropertyString(format: Record<string, PropSchema>, data: string, path: string): void {
  const res: Record<string, PV> = Object.create(null);
  let defaultKey: string | undefined;
  for (const part of data.split(",")) {
    if (/^\s*$/.test(part)) continue;
    const kv = /^([^=]+)=(.+)\n?$/.exec(part);
    if (kv) {
      const k = kv[1]!;
      if (res[k] !== undefined) die(`duplicate key in comma-separated list property: ${k}`);
      const schema = Object.hasOwn(format, k) ? format[k] : undefined;
      if (!schema) die(`invalid key in comma-separated list property: ${k}`);
      res[k] = schema!.type === "boolean" ? (parseBoolean(kv[2]!) ?? kv[2]!) : kv[2]!;
    } else if (!part.includes("=")) {
      if (defaultKey) die(`duplicate key in comma-separated list property: ${defaultKey}`);
      for (const [key, schema] of Object.entries(format)) {
        if (!schema.default_key) continue;
        defaultKey = key;
        if (perlTrue(res[key] as string | undefined)) die(`duplicate key in comma-separated list property: ${key}`);
        res[key] = schema.type === "boolean" ? (parseBoolean(part) ?? part) : part;
        break;
      }
      if (!defaultKey) die("value without key, but schema does not define a default key");
    } else die("missing key in comma-separated list property");
  }
  const errors: Errors = {};
  checkObject(path, format, res, 0, errors);
  if (Object.keys(errors).length > 0) {
    // PVE::Exception's stringification: message, then "key: error\n" per error (sorted here).
    const lines = Object.keys(errors).sort().map((k) => `${k}: ${errors[k]}\n`);
    throw new Die(`format error\n${lines.join("")}`);
  }
}

function checkObject(
  path: string,
  props: Record<string, PropSchema>,
  value: Record<string, PV>,
  additional: PropSchema["additionalProperties"],
  errors: Errors,
): void {
  const sub = (k: string): string => (path ? `${path}.${k}` : k);
  const get = (k: string): PV => (Object.hasOwn(value, k) ? value[k] : undefined);
  for (const [k, schema] of Object.entries(props)) {
    if (!k.endsWith("[n]")) checkProp(get(k), schema, sub(k), errors);
    else if (!schema.optional) throw new Error(`${sub(k)}: a non-optional indexed property cannot be expanded`);
  }
  for (const k of Object.keys(value)) {
    const schema = lookup(props, k);
    if (schema) {
      // "mp0" stands for the schema's "mp[n]", which the loop above skipped
      if (!Object.hasOwn(props, k)) checkProp(get(k), schema, sub(k), errors);
      const requires = schema.requires;
      if (typeof requires === "object") checkProp({ ref: "HASH", value }, requires, path, errors);
      else if (requires !== undefined && get(requires) === undefined) {
        addError(errors, sub(requires), `missing property required by '${sub(k)}'`);
      }
      continue;
    }
    if (additional !== undefined && !additional) {
      addError(errors, sub(k), "property is not defined in schema and the schema does not allow additional properties");
    } else if (typeof additional === "object") checkProp(get(k), additional, sub(k), errors);
  }
}

function checkProp(value: PV, schema: PropSchema, path: string, errors: Errors): void {
  for (const kw of Object.keys(schema)) {
    if (!KEYWORDS.has(kw)) throw new Error(`${path}: schema keyword '${kw}' is not ported`);
  }
  if (value === undefined) {
    if (schema.type !== "null" && !schema.optional) addError(errors, path, "property is missing and it is not optional");
    return;
  }
  if (!checkType(path, schema.type, value, errors)) return;

  if (typeof value !== "string") {
    if (value.ref === "ARRAY") {
      if (schema.items) value.value.forEach((el, i) => checkProp(el, schema.items!, `${path}[${i}]`, errors));
    } else if (schema.properties || schema.additionalProperties) {
      if (value.ref !== "HASH") addError(errors, path, "an object is required");
      else checkObject(path, schema.properties ?? {}, value.value, schema.additionalProperties, errors);
    }
    return;
  }

  if (schema.format) {
    try {
      checkFormat(schema.format, value, path);
    } catch (err) {
      if (!(err instanceof Die)) throw err;
      return addError(errors, path, `invalid format - ${err.msg}`);
    }
  }
  if (schema.pattern && !patternRe(schema.pattern).test(value)) {
    return addError(errors, path, "value does not match the regex pattern");
  }
  const len = cpLength(value);
  if (schema.maxLength !== undefined && len > schema.maxLength) {
    return addError(errors, path, `value may only be ${schema.maxLength} characters long`);
  }
  if (schema.minLength !== undefined && len < schema.minLength) {
    return addError(errors, path, `value must be at least ${schema.minLength} characters long`);
  }
  if (isNumber(value)) {
    if (schema.maximum !== undefined && Number(value) > Number(schema.maximum)) {
      return addError(errors, path, `value must have a maximum value of ${schema.maximum}`);
    }
    if (schema.minimum !== undefined && Number(value) < Number(schema.minimum)) {
      return addError(errors, path, `value must have a minimum value of ${schema.minimum}`);
    }
  }
  if (schema.enum && !schema.enum.some((e) => String(e) === value)) {
    addError(errors, path, `value '${value}' does not have a value in the enumeration '${schema.enum.join(", ")}'`);
  }
}

/** RESTHandler's normalize_legacy_param_formats: an array for a `-list` string becomes "a,b";
 *  a scalar for an array-typed parameter becomes a one-element array. */
function normalize(params: Record<string, PV>, props: Record<string, PropSchema>): void {
  for (const [k, s] of Object.entries(props)) {
    const v = params[k];
    if (v === undefined || (typeof v === "string" && !perlTrue(v))) continue;
    if (typeof v !== "string" && v.ref === "ARRAY" && s.type === "string" && typeof s.format === "string" &&
      s.format.endsWith("-list") && v.value.every((x) => typeof x === "string")) {
      params[k] = v.value.join(",");
    } else if (typeof v === "string" && s.type === "array") params[k] = { ref: "ARRAY", value: [v] };
  }
}

/**
 * Validates one request's parameters (path captures included, e.g. node, vmid) the way PVE's
 * RESTHandler::handle does. Returns PVE's error hash: parameter → message; {} when valid.
 * Messages are verbatim, including the trailing "\n" PVE keeps on `invalid format - ...`.
 * form: a urlencoded body or query string (strings; "" is absent), else a JSON body.
 */
export function validateParams(key: string, params: Record<string, unknown>, opts: { form: boolean }): Record<string, string> {
  const entry = schemaOf(key);
  if (!entry) throw new Error(`no schema for '${key}' in pve-api-schema.json`);
  const value: Record<string, PV> = Object.create(null);
  // pve-http-server's decode_urlencoded turns "k=" into undef: absent, though still a key
  for (const [k, v] of Object.entries(params)) value[k] = opts.form && v === "" ? undefined : toPerl(v, opts.form);
  normalize(value, entry.parameters.properties ?? {});
  const errors: Errors = {};
  checkProp({ ref: "HASH", value }, entry.parameters, "", errors);
  return errors;
}

/** Checks one value against one (sub)schema, e.g. a property string against its format; errors keyed by `name`. */
export function validateValue(schema: PropSchema, value: unknown, opts: { form: boolean; name?: string }): Record<string, string> {
  const errors: Errors = {};
  checkProp(toPerl(value, opts.form), schema, opts.name ?? "value", errors);
  return errors;
}

/** RESTHandler::find_handler over PVE_ENDPOINTS: the path (with or without "/api2/json") is
 *  uri_unescape'd, split on '/' (empty parts skipped), and each {name} takes a \S+ segment. */
export function endpointOf(method: string, path: string): { key: string; captures: Record<string, string> } | undefined {
  const raw = (path.split("?", 1)[0] ?? "").replace(/^\/+api2\/[a-z0-9]+(?=\/|$)/, "");
  const segs = raw.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
    .split(/\/+/).filter((s) => s.length > 0);
  outer: for (const key of PVE_ENDPOINTS) {
    const [m, tpl] = key.split(" ") as [string, string];
    const parts = tpl.split("/").filter((s) => s.length > 0);
    if (m !== method.toUpperCase() || parts.length !== segs.length) continue;
    const captures: Record<string, string> = {};
    for (const [i, part] of parts.entries()) {
      const name = /^\{([\w-]+)\}$/.exec(part)?.[1];
      const seg = segs[i]!;
      const cap = name ? /^(\S+)\n?$/.exec(seg)?.[1] : undefined;
      if (name && cap !== undefined) captures[name] = cap;
      else if (name || part !== seg) continue outer;
    }
    return { key, captures };
  }
  return undefined;
}

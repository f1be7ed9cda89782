/** Parameter schemas and their validation, with PVE's messages and type rules. */
import { paramError, type Raw } from "./http.js";

export type Param =
  | { type: "integer"; optional?: boolean; min?: number; max?: number }
  | { type: "boolean"; optional?: boolean }
  | { type: "string"; optional?: boolean; pattern?: RegExp; maxLength?: number; enum?: readonly string[] };

export type Schema = Record<string, Param>;
export type Values = Record<string, string | number | undefined>;

function check(name: string, p: Param, v: unknown, form: boolean): string | number {
  if (p.type === "integer") {
    const s = String(v);
    if (typeof v === "boolean" || !/^-?\d+$/.test(s)) throw `type check ('integer') failed - got '${s}'`;
    const n = Number(s);
    if (p.min !== undefined && n < p.min) throw `value must have a minimum value of ${p.min}`;
    if (p.max !== undefined && n > p.max) throw `value must have a maximum value of ${p.max}`;
    return n;
  }
  if (p.type === "boolean") {
    if (v === true || v === false) {
      if (form) throw `type check ('boolean') failed - got '${v}'`;
      return v ? 1 : 0;
    }
    const s = String(v);
    if (s === "1" || s === "0") return Number(s);
    if (!form && (s === "true" || s === "false")) return s === "true" ? 1 : 0;
    throw `type check ('boolean') failed - got '${s}'`;
  }
  if (typeof v === "object" && v !== null) throw `type check ('string') failed - got ${Array.isArray(v) ? "ARRAY" : "HASH"}`;
  const s = String(v);
  if (p.enum && !p.enum.includes(s)) throw `value '${s}' does not have a value in the enumeration '${p.enum.join(", ")}'`;
  if (p.pattern && !p.pattern.test(s)) throw `value does not match the regex pattern`;
  if (p.maxLength !== undefined && s.length > p.maxLength) throw `value may only be ${p.maxLength} characters long`;
  void name;
  return s;
}

/** Validates every parameter (unknown ones are refused); collects all errors into one 400. */
export function validate(schema: Schema, raw: Raw, form: boolean): Values {
  const out: Values = {};
  const errors: Record<string, string> = {};
  for (const [name, v] of Object.entries(raw)) {
    const p = schema[name];
    if (!p) {
      errors[name] = "property is not defined in schema and the schema does not allow additional properties";
      continue;
    }
    try {
      out[name] = check(name, p, v, form);
    } catch (msg) {
      errors[name] = String(msg);
    }
  }
  for (const [name, p] of Object.entries(schema)) {
    if (!p.optional && raw[name] === undefined && !errors[name]) errors[name] = "property is missing and it is not optional";
  }
  if (Object.keys(errors).length > 0) throw paramError(errors);
  return out;
}

export const NODE: Param = { type: "string", pattern: /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/ };
export const VMID: Param = { type: "integer", min: 100, max: 999_999_999 };

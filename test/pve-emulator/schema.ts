/**
 * Request parameters are checked against Proxmox's own published schema
 * (test/pve-schema: an extract of pve-docs' apidata.js), never a hand-written
 * copy, so the emulator is exactly as strict as PVE. Valid values are then
 * typed for the handlers: integers and numbers as numbers, booleans as 1/0.
 */
import { paramError, type Raw } from "./http.js";
import { schemaOf, validateParams } from "../pve-schema/validate.js";

export type Values = Record<string, string | number | undefined>;

/** The schema key of a route ("PUT /nodes/{node}/lxc/{vmid}/config"); throws for a route Proxmox does not publish. */
export function requireSchema(key: string): void {
  if (!schemaOf(key)) throw new Error(`emulator route '${key}' has no entry in test/pve-schema/pve-api-schema.json: add it to test/pve-schema/endpoints.ts and run test/pve-schema/extract.ts`);
}

/** Validates (400 "Parameter verification failed." with PVE's messages) and types the parameters. */
export function checkParams(key: string, raw: Raw, form: boolean): Values {
  const errors = validateParams(key, raw, { form });
  if (Object.keys(errors).length > 0) throw paramError(errors);
  const props = schemaOf(key)!.parameters.properties ?? {};
  const out: Values = {};
  for (const [name, v] of Object.entries(raw)) {
    if (v === undefined || (form && v === "")) continue;
    const type = props[name]?.type;
    if (type === "integer" || type === "number") out[name] = Number(v);
    else if (type === "boolean") out[name] = v === true || v === "1" || v === 1 ? 1 : 0;
    else out[name] = String(v);
  }
  return out;
}

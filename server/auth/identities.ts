/**
 * Certificate identities and the map from identity to tenant.
 *
 * A client certificate names its holder by a SPIFFE URI SAN
 * (`spiffe://cluster.local/ns/agents/sa/runner`, how service meshes issue
 * workload identities) or by its subject CN. SANDBOXD_AUTH_IDENTITIES maps
 * them, comma-separated, `<identity>=<tenant>[:<role>]`:
 *
 *   spiffe://cluster.local/ns/agents/sa/runner=agents,
 *   spiffe://cluster.local/ns/ci/*=ci:user,
 *   CN=ops-console=ops:admin
 *
 * An identity ending in `/*` matches every SPIFFE id under that path; the
 * most specific match wins. An unmapped identity is not authenticated.
 */
import { ROLES, TENANT_PATTERN, type Principal, type Role } from "./principal.js";

export class IdentityMapError extends Error {
  override readonly name = "IdentityMapError";
}

interface Rule {
  /** "spiffe://…", "spiffe://…/*" or "CN=…". */
  pattern: string;
  tenant: string;
  role: Role;
}

export class IdentityMap {
  private constructor(private readonly rules: Rule[]) {}

  static parse(text: string): IdentityMap {
    const rules: Rule[] = [];
    for (const item of text.split(",").map((s) => s.trim()).filter(Boolean)) {
      const eq = item.lastIndexOf("=");
      const pattern = item.slice(0, eq).trim();
      const [tenant = "", role = "user"] = item.slice(eq + 1).trim().split(":");
      if (eq <= 0 || !(/^spiffe:\/\/[^\s,*]+(\/\*)?$/.test(pattern) || /^CN=[^,=*]+$/.test(pattern))) {
        throw new IdentityMapError(`'${item}': expected spiffe://trust-domain/path[/*]=tenant[:role] or CN=name=tenant[:role]`);
      }
      if (!TENANT_PATTERN.test(tenant)) throw new IdentityMapError(`'${item}': tenant '${tenant}' is not ${TENANT_PATTERN}`);
      if (!ROLES.includes(role as Role)) throw new IdentityMapError(`'${item}': role '${role}' is not one of ${ROLES.join(", ")}`);
      rules.push({ pattern, tenant, role: role as Role });
    }
    return new IdentityMap(rules);
  }

  get size(): number {
    return this.rules.length;
  }

  /** The principal for the first identity (in the order given) that a rule maps; the longest matching rule wins. */
  resolve(identities: readonly string[], via: Principal["via"]): Principal | undefined {
    for (const id of identities) {
      let best: Rule | undefined;
      for (const r of this.rules) {
        const hit = r.pattern.endsWith("/*") ? id.startsWith(r.pattern.slice(0, -1)) : id === r.pattern;
        if (hit && (!best || r.pattern.length > best.pattern.length)) best = r;
      }
      if (best) return { tenant: best.tenant, role: best.role, name: id, via };
    }
    return undefined;
  }
}

/** A peer certificate as node's TLSSocket.getPeerCertificate() gives it (the fields used here). */
export interface PeerCertificate {
  subject?: { CN?: string | string[] };
  subjectaltname?: string;
}

/** The identities a certificate carries: its SPIFFE URI SANs, then "CN=<cn>". */
export function certificateIdentities(cert: PeerCertificate | undefined): string[] {
  if (!cert) return [];
  const uris = (cert.subjectaltname ?? "").split(/,\s*/).filter((s) => s.startsWith("URI:spiffe://")).map((s) => s.slice(4));
  const cn = Array.isArray(cert.subject?.CN) ? cert.subject?.CN[0] : cert.subject?.CN;
  return [...uris, ...(cn ? [`CN=${cn}`] : [])];
}

/**
 * The identities in an Envoy/Istio `x-forwarded-client-cert` header: the
 * URI= of its last element (the client of the proxy that set it; with
 * `forward_client_cert_details: SANITIZE_SET` the only one), then its
 * Subject's CN. Quoted values may hold commas and semicolons.
 */
export function xfccIdentities(header: string | null): string[] {
  if (!header) return [];
  const elements = splitOutsideQuotes(header, ",");
  const last = elements[elements.length - 1] ?? "";
  const out: string[] = [];
  let cn: string | undefined;
  for (const pair of splitOutsideQuotes(last, ";")) {
    const eq = pair.indexOf("=");
    const key = pair.slice(0, eq).trim().toLowerCase();
    const value = pair.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1").replace(/\\"/g, '"');
    if (key === "uri" && value.startsWith("spiffe://")) out.push(value);
    if (key === "subject") cn = /(?:^|,)\s*CN=([^,]+)/.exec(value)?.[1];
  }
  return cn ? [...out, `CN=${cn}`] : out;
}

function splitOutsideQuotes(s: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "\\" && quoted) {
      cur += c + (s[i + 1] ?? "");
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      cur += c;
    } else if (c === sep && !quoted) {
      parts.push(cur);
      cur = "";
    } else cur += c;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter(Boolean);
}

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
 * An identity ending in `/*` matches every SPIFFE id under that path; an
 * exact rule beats every prefix rule, and among prefix rules the longest
 * wins. A pattern given twice is refused (which tenant would it be?). An
 * unmapped identity is not authenticated.
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
      const [tenant = "", role = "user", ...extra] = item.slice(eq + 1).trim().split(":");
      if (eq <= 0 || !(/^spiffe:\/\/[^\s,*]+(\/\*)?$/.test(pattern) || /^CN=[^,=*]+$/.test(pattern))) {
        throw new IdentityMapError(`'${item}': expected spiffe://trust-domain/path[/*]=tenant[:role] or CN=name=tenant[:role]`);
      }
      if (!TENANT_PATTERN.test(tenant)) throw new IdentityMapError(`'${item}': tenant '${tenant}' is not ${TENANT_PATTERN}`);
      if (extra.length > 0 || !ROLES.includes(role as Role)) {
        throw new IdentityMapError(`'${item}': role '${[role, ...extra].join(":")}' is not one of ${ROLES.join(", ")}`);
      }
      if (rules.some((r) => r.pattern === pattern)) throw new IdentityMapError(`'${item}': ${pattern} is mapped twice`);
      rules.push({ pattern, tenant, role: role as Role });
    }
    return new IdentityMap(rules);
  }

  get size(): number {
    return this.rules.length;
  }

  /** The principal for the first identity (in the order given) that a rule maps; an exact rule, else the longest prefix rule, wins. */
  resolve(identities: readonly string[], via: Principal["via"]): Principal | undefined {
    for (const id of identities) {
      let best: Rule | undefined;
      let bestScore = -1;
      for (const r of this.rules) {
        const prefix = r.pattern.endsWith("/*");
        const hit = prefix ? id.startsWith(r.pattern.slice(0, -1)) : id === r.pattern;
        // An exact rule outranks any prefix rule (a prefix as long as the id, "…/a/*" for "…/a/b", must not shadow "…/a/b").
        const score = prefix ? r.pattern.length : Number.MAX_SAFE_INTEGER;
        if (hit && score > bestScore) [best, bestScore] = [r, score];
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

/**
 * The identities a certificate carries: its SPIFFE URI SANs, then "CN=<cn>".
 * Node quotes a SAN holding special characters (`URI:"…\u002c…"`), which a
 * SPIFFE id never does, so only unquoted `URI:spiffe://` entries count. A
 * subject with several CNs names no one by CN (which would it be?).
 */
export function certificateIdentities(cert: PeerCertificate | undefined): string[] {
  if (!cert) return [];
  const uris = (cert.subjectaltname ?? "").split(/,\s*/).filter((s) => s.startsWith("URI:spiffe://")).map((s) => s.slice(4));
  const cns = cert.subject?.CN;
  const cn = Array.isArray(cns) ? (cns.length === 1 ? cns[0] : undefined) : cns;
  return [...uris, ...(cn ? [`CN=${cn}`] : [])];
}

/**
 * The identities in an Envoy/Istio `x-forwarded-client-cert` header: the
 * URI= of its last element (the client of the proxy that set it; with
 * `forward_client_cert_details: SANITIZE_SET` the only one), then its
 * Subject's CN. Quoted values may hold commas and semicolons; the Subject
 * is RFC 2253 (`CN=a,OU=b\,c`), whose escaped commas do not end a value.
 * A header whose quotes do not balance yields nothing: with APPEND_FORWARD an
 * unterminated quote sent by the client would otherwise swallow the element
 * the proxy appended, and the client's own URI= would pass for the last one.
 * Nor does an element with several SPIFFE URIs: an X.509-SVID has exactly
 * one, and Envoy writes URI values unescaped, so a second one may be text
 * smuggled inside the first (`URI=spiffe://td/a;URI=spiffe://td/b`).
 */
export function xfccIdentities(header: string | null): string[] {
  if (!header) return [];
  const elements = splitOutsideQuotes(header, ",");
  if (!elements) return [];
  const last = elements[elements.length - 1] ?? "";
  const out: string[] = [];
  let cn: string | undefined;
  for (const pair of splitOutsideQuotes(last, ";") ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    const key = pair.slice(0, eq).trim().toLowerCase();
    const raw = pair.slice(eq + 1).trim().replace(/^"(.*)"$/s, "$1");
    if (key === "uri" && raw.startsWith("spiffe://")) out.push(raw.replace(/\\"/g, '"'));
    // The Subject's own escapes (\" too) are RFC 2253's: rfc2253CommonName reads them.
    if (key === "subject") cn = rfc2253CommonName(raw);
  }
  if (out.length > 1) return [];
  return cn ? [...out, `CN=${cn}`] : out;
}

/** The one CN of an RFC 2253 name ("CN=Test Client,OU=Lyft,C=US"), unescaped; undefined when none, several, or not RFC 2253. */
function rfc2253CommonName(name: string): string | undefined {
  const cns: string[] = [];
  let i = 0;
  while (i < name.length) {
    // One attribute (a multi-valued RDN's parts, joined by '+', count as attributes too).
    const eq = name.indexOf("=", i);
    if (eq < 0) return undefined;
    const type = name.slice(i, eq).trim();
    // Bytes, since OpenSSL escapes each byte of a UTF-8 character as \XX.
    const value: number[] = [];
    let j = eq + 1;
    for (; j < name.length && name[j] !== "," && name[j] !== "+"; j++) {
      if (name[j] === "\\") {
        const hex = /^[0-9a-fA-F]{2}/.exec(name.slice(j + 1, j + 3));
        if (hex) value.push(parseInt(hex[0], 16));
        else value.push(...Buffer.from(name[j + 1] ?? "", "utf8"));
        j += hex ? 2 : 1;
      } else value.push(...Buffer.from(name[j]!, "utf8"));
    }
    if (type.toUpperCase() === "CN") cns.push(Buffer.from(value).toString("utf8").trim());
    i = j + 1;
  }
  return cns.length === 1 && cns[0] ? cns[0] : undefined;
}

/** `s` split at `sep` outside double quotes (a backslash escapes inside them); undefined when a quote is left open. */
function splitOutsideQuotes(s: string, sep: string): string[] | undefined {
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
  if (quoted) return undefined;
  parts.push(cur);
  return parts.map((p) => p.trim()).filter(Boolean);
}

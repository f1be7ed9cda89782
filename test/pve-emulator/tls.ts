/** A self-signed certificate for the emulator's HTTPS listener, made with the openssl CLI. */
import { execFile } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { promises as fs } from "node:fs";
import { isIP } from "node:net";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface Tls {
  key: string;
  cert: string;
  certFile: string;
  /** SHA-256 fingerprint, colon-separated upper-case hex (as pvenode cert info shows it). */
  fingerprint: string;
}

/** Reuses dir/pve-ssl.{key,pem} when present, else makes them (valid for localhost, 127.0.0.1 and `host`). */
export async function ensureCertificate(dir: string, host: string): Promise<Tls> {
  const keyFile = `${dir}/pve-ssl.key`;
  const certFile = `${dir}/pve-ssl.pem`;
  const exists = await fs.access(certFile).then(() => true, () => false);
  if (!exists) {
    const san = ["DNS:localhost", "IP:127.0.0.1", isIP(host) ? `IP:${host}` : `DNS:${host}`];
    await run("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
      "-subj", "/CN=pve-emulator", "-addext", `subjectAltName=${[...new Set(san)].join(",")}`,
      "-addext", "basicConstraints=critical,CA:TRUE", "-keyout", keyFile, "-out", certFile,
    ]);
  }
  const [key, cert] = await Promise.all([fs.readFile(keyFile, "utf8"), fs.readFile(certFile, "utf8")]);
  const raw = new X509Certificate(cert).raw;
  const fingerprint = createHash("sha256").update(raw).digest("hex").toUpperCase().match(/../g)!.join(":");
  return { key, cert, certFile, fingerprint };
}

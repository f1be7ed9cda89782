/**
 * SSH keys, generated in-process (no ssh-keygen spawn): a fresh ed25519 host
 * key per sandbox, and one client key per instance kept in the state dir so
 * sandboxes adopted after a restart stay reachable.
 */
import { promises as fs } from "node:fs";
import ssh2 from "ssh2";

export interface KeyPair {
  /** OpenSSH private key (PEM-like "-----BEGIN OPENSSH PRIVATE KEY-----"). */
  privateKey: string;
  /** OpenSSH public key line, "ssh-ed25519 AAAA...". */
  publicKey: string;
}

export function generateEd25519(): KeyPair {
  const k = ssh2.utils.generateKeyPairSync("ed25519");
  return { privateKey: k.private, publicKey: k.public.trim() };
}

export async function loadOrCreateClientKey(stateDir: string): Promise<KeyPair> {
  const priv = `${stateDir}/client_ed25519`;
  const pub = `${priv}.pub`;
  try {
    const [privateKey, publicKey] = await Promise.all([fs.readFile(priv, "utf8"), fs.readFile(pub, "utf8")]);
    if (publicKey.startsWith("ssh-ed25519 ")) return { privateKey, publicKey: publicKey.trim() };
  } catch {
    // Not there yet: make it.
  }
  const key = generateEd25519();
  // Written to temp names and renamed so a crash never leaves half a key.
  await fs.writeFile(`${priv}.tmp`, key.privateKey, { mode: 0o600 });
  await fs.writeFile(`${pub}.tmp`, `${key.publicKey}\n`, { mode: 0o644 });
  await fs.rename(`${priv}.tmp`, priv);
  await fs.rename(`${pub}.tmp`, pub);
  return key;
}

/**
 * SSH keys, generated in-process (no ssh-keygen spawn): a fresh ed25519 host
 * key per sandbox, and one client key per instance kept in the state dir so
 * sandboxes adopted after a restart stay reachable.
 *
 * Not ssh2's utils.generateKeyPairSync("ed25519"): in ssh2 1.17 about 1 key in
 * 150 comes out with a 31-byte public key (a leading zero byte dropped), which
 * OpenSSH refuses to load ("error in libcrypto"). Node's crypto makes the key;
 * the OpenSSH encodings are written here.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";

export interface KeyPair {
  /** OpenSSH private key (PEM-like "-----BEGIN OPENSSH PRIVATE KEY-----"). */
  privateKey: string;
  /** OpenSSH public key line, "ssh-ed25519 AAAA...". */
  publicKey: string;
}

const sshString = (b: Buffer | string) => {
  const data = typeof b === "string" ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
};
const uint32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

export function generateEd25519(): KeyPair {
  const jwk = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
  const pk = Buffer.from(jwk.x!, "base64url");
  const seed = Buffer.from(jwk.d!, "base64url");
  if (pk.length !== 32 || seed.length !== 32) throw new Error("unexpected ed25519 key size");
  const publicBlob = Buffer.concat([sshString("ssh-ed25519"), sshString(pk)]);
  const check = randomBytes(4);
  let section = Buffer.concat([
    check, check, sshString("ssh-ed25519"), sshString(pk), sshString(Buffer.concat([seed, pk])), sshString(""),
  ]);
  // Padding 1, 2, 3, ... to the cipher block size (8 for "none").
  const pad = (8 - (section.length % 8)) % 8;
  section = Buffer.concat([section, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0"), sshString("none"), sshString("none"), sshString(""), uint32(1),
    sshString(publicBlob), sshString(section),
  ]).toString("base64");
  const lines = body.match(/.{1,70}/g)!.join("\n");
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${publicBlob.toString("base64")}`,
  };
}

export async function loadOrCreateClientKey(stateDir: string): Promise<KeyPair> {
  const priv = `${stateDir}/client_ed25519`;
  const pub = `${priv}.pub`;
  try {
    const [privateKey, publicKey] = await Promise.all([fs.readFile(priv, "utf8"), fs.readFile(pub, "utf8")]);
    // 51 bytes: the blob of a well-formed ed25519 key (see above for the malformed ones).
    const blob = Buffer.from(publicKey.trim().split(" ")[1] ?? "", "base64");
    if (publicKey.startsWith("ssh-ed25519 ") && blob.length === 51) return { privateKey, publicKey: publicKey.trim() };
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

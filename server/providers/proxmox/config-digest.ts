/**
 * The compare-and-swap token of a container config write. Lease writes send
 * the digest of the config they read, so that of two replicas writing at once
 * one loses and reads again. A config that came back without a digest must
 * not turn into a write without one (`digest=""`, or none at all, would
 * overwrite whatever another replica wrote meanwhile): such a write is
 * refused as UNAVAILABLE, and the renewal stays pending until the next try.
 */
import { unavailable } from "../../errors.js";

/** PVE sends the config file's SHA-1 in hex; its schema caps `digest` at 40 characters. */
const DIGEST = /^[0-9a-f]{40}$/i;

export function configDigest(conf: Record<string, unknown>, what: string): string {
  const d = conf.digest;
  if (typeof d !== "string" || !DIGEST.test(d)) {
    throw unavailable(`${what}: Proxmox returned the container config without a valid digest; not writing without one`);
  }
  return d;
}

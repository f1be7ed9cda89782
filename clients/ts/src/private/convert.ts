/** Conversions between the generated messages and the library's plain objects. */
import { timestampDate, type Timestamp, type Duration, durationMs } from "@bufbuild/protobuf/wkt";

export function toDate(ts: Timestamp | undefined): Date | undefined {
  return ts === undefined ? undefined : timestampDate(ts);
}

export function toMs(d: Duration | undefined): number | undefined {
  return d === undefined ? undefined : durationMs(d);
}

/** A uint64 as a number (exact below 2^53, which any file size here is). */
export function num(v: bigint): number {
  return Number(v);
}

export function bytesOf(data: Uint8Array | string): Uint8Array {
  return typeof data === "string" ? new TextEncoder().encode(data) : data;
}

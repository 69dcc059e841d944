/**
 * Canonical bytes (RFC 8785 JSON Canonicalization Scheme) and their SHA-256 digest. The contract
 * digest is what parties approve and what attestation evidence binds.
 */
import canonicalize from "canonicalize";
import { sha256, toHex } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import type { Contract } from "./types.js";

export interface Digest {
  /** 64 lowercase hex characters. */
  hex: string;
  bytes: Uint8Array;
}

/** RFC 8785 canonical UTF-8 bytes of a JSON value. Refuses NaN, Infinity, lone surrogates, cycles. */
export function canonicalBytes(value: unknown): Uint8Array {
  let s: string | undefined;
  try {
    s = canonicalize(value);
  } catch (cause) {
    throw new UsageError("value cannot be canonicalised", { cause });
  }
  if (s === undefined) throw new UsageError("value cannot be canonicalised");
  return new TextEncoder().encode(s);
}

/** SHA-256 over the canonical bytes of any JSON value. */
export async function canonicalDigest(value: unknown): Promise<Digest> {
  const bytes = await sha256(canonicalBytes(value));
  return { hex: toHex(bytes), bytes };
}

/** The contract digest: SHA-256 of the contract's RFC 8785 canonical bytes. */
export function contractDigest(contract: Contract): Promise<Digest> {
  return canonicalDigest(contract);
}

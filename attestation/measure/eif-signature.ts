/**
 * The EIF signature section: a CBOR array of {signing_certificate, signature} maps whose byte
 * fields are serde Vec<u8>, i.e. CBOR arrays of small integers. Only element 0 counts. Parsing
 * only; the COSE_Sign1 signature is returned as bytes, not verified here.
 */
import { decode } from "cborg";
import { EifFormatError } from "./errors.js";

export interface EifSignatureEntry {
  /** DER of the signing certificate (the section carries it as PEM). */
  certificateDer: Uint8Array;
  /** COSE_Sign1 over {register_index: 0, register_value: PCR0}. */
  coseSign1: Uint8Array;
}

function fail(message: string): never {
  throw new EifFormatError(message);
}

function byteVector(x: unknown): Uint8Array {
  if (!Array.isArray(x) || !x.every((n) => Number.isInteger(n) && n >= 0 && n <= 0xff)) {
    fail("eif: signature field is not a byte vector");
  }
  return Uint8Array.from(x as number[]);
}

function pemToDer(pem: Uint8Array): Uint8Array {
  const m = /^-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE-----\r?\n?$/.exec(
    new TextDecoder().decode(pem),
  );
  if (m === null) fail("eif: signing certificate is not one PEM certificate");
  let bin: string;
  try {
    bin = atob(m[1]!.replace(/[\r\n]/g, ""));
  } catch {
    fail("eif: signing certificate base64 invalid");
  }
  if (bin.length === 0) fail("eif: signing certificate empty");
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** The first (and only used) entry of a signature section. */
export function parseEifSignature(section: Uint8Array): EifSignatureEntry {
  let value: unknown;
  try {
    value = decode(section);
  } catch (e) {
    throw new EifFormatError("eif: signature section is not CBOR", { cause: e });
  }
  if (!Array.isArray(value) || value.length === 0) fail("eif: signature section is not a non-empty array");
  const first: unknown = value[0];
  if (typeof first !== "object" || first === null || Array.isArray(first))
    fail("eif: signature entry is not a map");
  const entry = first as Record<string, unknown>;
  return {
    certificateDer: pemToDer(byteVector(entry.signing_certificate)),
    coseSign1: byteVector(entry.signature),
  };
}

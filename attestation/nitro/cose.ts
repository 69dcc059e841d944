/**
 * COSE_Sign1 (RFC 9052 §4.2) as NSM emits it: [protected bstr, unprotected map, payload bstr,
 * signature bstr], untagged in practice, tag 18 allowed. The protected header and payload are
 * kept as the exact received bytes: the signature covers those bytes, and re-encoding decoded
 * values would break on encodings the encoder does not reproduce (indefinite-length maps).
 */
import { encode } from "cborg";
import { EvidenceFormatError } from "../errors.js";
import { decodeCbor, plainBytes } from "./cbor.js";

/** COSE algorithm identifier of ECDSA P-384 with SHA-384 (RFC 9053). */
export const COSE_ALG_ES384 = -35;
/** ES384 signature: r || s, 48 bytes each, big-endian (RFC 9053 §2.1), not DER. */
export const ES384_SIGNATURE_BYTES = 96;
/** Attestation document payload size bounds from the NSM specification (§3.1). */
export const MAX_PAYLOAD_BYTES = 16384;
/** Envelope overhead over the payload is a few dozen bytes; this bound only stops absurd input. */
export const MAX_DOCUMENT_BYTES = MAX_PAYLOAD_BYTES + 1024;

const HEADER_ALG = 1;
const HEADER_CRIT = 2;
const TAG_COSE_SIGN1 = 0xd2; // CBOR tag 18 in its one-byte form

export interface CoseSign1 {
  /** Serialized protected header, exactly as received (signed). */
  protectedHeader: Uint8Array;
  /** Serialized payload, exactly as received (signed). */
  payload: Uint8Array;
  /** r || s. */
  signature: Uint8Array;
  tagged: boolean;
}

/** The protected header NSM uses: {1: -35}. */
export const ES384_PROTECTED_HEADER: Uint8Array = encode(new Map([[HEADER_ALG, COSE_ALG_ES384]]));

export function decodeCoseSign1(bytes: Uint8Array): CoseSign1 {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0 || bytes.length > MAX_DOCUMENT_BYTES) {
    throw new EvidenceFormatError("COSE_Sign1: size out of range");
  }
  const tagged = bytes[0] === TAG_COSE_SIGN1;
  const item = decodeCbor(tagged ? bytes.subarray(1) : bytes, "COSE_Sign1");
  if (!Array.isArray(item) || item.length !== 4) {
    throw new EvidenceFormatError("COSE_Sign1: not an array of 4");
  }
  const [protectedHeader, unprotected, payload, signature] = item as unknown[];
  if (!(protectedHeader instanceof Uint8Array)) {
    throw new EvidenceFormatError("COSE_Sign1: protected header not a byte string");
  }
  if (!(unprotected instanceof Map) || unprotected.size !== 0) {
    throw new EvidenceFormatError("COSE_Sign1: unprotected header not an empty map");
  }
  if (!(payload instanceof Uint8Array) || payload.length === 0 || payload.length > MAX_PAYLOAD_BYTES) {
    throw new EvidenceFormatError("COSE_Sign1: payload not a byte string of 1..16384 bytes");
  }
  if (!(signature instanceof Uint8Array) || signature.length !== ES384_SIGNATURE_BYTES) {
    throw new EvidenceFormatError("COSE_Sign1: signature not 96 bytes");
  }
  checkProtectedHeader(protectedHeader);
  return {
    protectedHeader: plainBytes(protectedHeader),
    payload: plainBytes(payload),
    signature: plainBytes(signature),
    tagged,
  };
}

function checkProtectedHeader(bytes: Uint8Array): void {
  const header = decodeCbor(bytes, "COSE_Sign1 protected header");
  if (!(header instanceof Map)) {
    throw new EvidenceFormatError("COSE_Sign1: protected header not a map");
  }
  if (header.get(HEADER_ALG) !== COSE_ALG_ES384) {
    throw new EvidenceFormatError("COSE_Sign1: algorithm not ES384");
  }
  // We understand no critical header parameters, so any is a reason to stop (RFC 9052 §3.1).
  if (header.has(HEADER_CRIT)) {
    throw new EvidenceFormatError("COSE_Sign1: critical header parameters not supported");
  }
}

/** Sig_structure = ["Signature1", protected, external_aad = h'', payload] (RFC 9052 §4.4). */
export function encodeSigStructure(protectedHeader: Uint8Array, payload: Uint8Array): Uint8Array {
  return encode(["Signature1", protectedHeader, new Uint8Array(0), payload]);
}

/** Untagged COSE_Sign1 with an empty unprotected header, as NSM emits it. */
export function encodeCoseSign1(
  protectedHeader: Uint8Array,
  payload: Uint8Array,
  signature: Uint8Array,
): Uint8Array {
  return encode([protectedHeader, new Map(), payload, signature]);
}

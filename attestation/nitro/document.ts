/**
 * The attestation document inside the COSE_Sign1 payload (NSM attestation_process.md §2.2 and
 * §3.2.2), decoded into a typed value and encoded back. Types and sizes only: no crypto, no
 * opinions. Where real documents disagree with the written specification they win: optional
 * fields come as explicit null, and user_data/nonce reach 1024 bytes (the §2.2 CDDL), not 512.
 */
import { encode } from "cborg";
import { EvidenceFormatError, UsageError } from "../errors.js";
import { decodeCbor, plainBytes } from "./cbor.js";

export const NITRO_DIGEST = "SHA384";
/** Largest public_key / user_data / nonce NSM accepts and emits. */
export const MAX_AUX_BYTES = 1024;
/** DER certificates in the document are at most 1024 bytes each (§2.2 `cert`). */
export const MAX_CERT_BYTES = 1024;
export const MAX_PCRS = 32;
const PCR_SIZES = new Set([32, 48, 64]);
/** No genuine chain is longer than root, regional, zonal, instance; this bounds the work. */
const MAX_CABUNDLE = 16;
const MAX_MODULE_ID_CHARS = 256;

export interface NitroDocument {
  moduleId: string;
  digest: typeof NITRO_DIGEST;
  /** Milliseconds since the Unix epoch, UTC. */
  timestamp: number;
  /** PCR index (0..31) → value (32, 48 or 64 bytes), in ascending index order. */
  pcrs: ReadonlyMap<number, Uint8Array>;
  /** Leaf certificate, DER. */
  certificate: Uint8Array;
  /** DER certificates, root first. */
  cabundle: readonly Uint8Array[];
  /** Absent and explicit CBOR null both read as null. */
  publicKey: Uint8Array | null;
  userData: Uint8Array | null;
  nonce: Uint8Array | null;
}

/** Payload keys in the order NSM writes them; `encodeAttestationPayload` keeps this order. */
const KEYS = [
  "module_id",
  "digest",
  "timestamp",
  "pcrs",
  "certificate",
  "cabundle",
  "public_key",
  "user_data",
  "nonce",
] as const;
const KNOWN_KEYS: ReadonlySet<string> = new Set(KEYS);

function fail(message: string): never {
  throw new EvidenceFormatError(`payload: ${message}`);
}

function isBytes(v: unknown, min: number, max: number): v is Uint8Array {
  return v instanceof Uint8Array && v.length >= min && v.length <= max;
}

function optionalBytes(v: unknown, min: number, field: string): Uint8Array | null {
  if (v === undefined || v === null) return null;
  if (!isBytes(v, min, MAX_AUX_BYTES)) fail(`${field} not null or a byte string of at most 1024 bytes`);
  return plainBytes(v);
}

function decodePcrs(v: unknown): Map<number, Uint8Array> {
  if (!(v instanceof Map) || v.size === 0 || v.size > MAX_PCRS) fail("pcrs not a map of 1..32 entries");
  const pcrs = new Map<number, Uint8Array>();
  for (const index of [...v.keys()].sort((a, b) => a - b)) {
    if (!Number.isInteger(index) || index < 0 || index >= MAX_PCRS) fail("pcrs index not an integer 0..31");
    const value: unknown = v.get(index);
    if (!(value instanceof Uint8Array) || !PCR_SIZES.has(value.length))
      fail("pcrs value not 32, 48 or 64 bytes");
    pcrs.set(index, plainBytes(value));
  }
  return pcrs;
}

/** Decodes and type-checks the payload bytes of a Nitro COSE_Sign1. */
export function decodeAttestationPayload(payload: Uint8Array): NitroDocument {
  const map = decodeCbor(payload, "payload");
  if (!(map instanceof Map)) fail("not a map");
  for (const key of map.keys()) {
    if (typeof key !== "string" || !KNOWN_KEYS.has(key)) fail("unknown or non-text key");
  }
  const moduleId: unknown = map.get("module_id");
  if (typeof moduleId !== "string" || moduleId.length === 0 || moduleId.length > MAX_MODULE_ID_CHARS) {
    fail("module_id not a non-empty text string");
  }
  if (map.get("digest") !== NITRO_DIGEST) fail("digest not SHA384");
  const timestamp: unknown = map.get("timestamp");
  // The decoder refuses floats and integers beyond 2^53, so a safe integer here was a CBOR uint.
  if (typeof timestamp !== "number" || !Number.isSafeInteger(timestamp) || timestamp <= 0) {
    fail("timestamp not a positive integer");
  }
  const pcrs = decodePcrs(map.get("pcrs"));
  const certificate: unknown = map.get("certificate");
  if (!isBytes(certificate, 1, MAX_CERT_BYTES)) fail("certificate not a byte string of 1..1024 bytes");
  const cabundle: unknown = map.get("cabundle");
  if (!Array.isArray(cabundle) || cabundle.length === 0 || cabundle.length > MAX_CABUNDLE) {
    fail("cabundle not a non-empty array");
  }
  for (const cert of cabundle as unknown[]) {
    if (!isBytes(cert, 1, MAX_CERT_BYTES)) fail("cabundle entry not a byte string of 1..1024 bytes");
  }
  return {
    moduleId,
    digest: NITRO_DIGEST,
    timestamp,
    pcrs,
    certificate: plainBytes(certificate),
    cabundle: (cabundle as Uint8Array[]).map(plainBytes),
    // §3.2.2.2: public_key is 1..1024 bytes, user_data and nonce may be empty.
    publicKey: optionalBytes(map.get("public_key"), 1, "public_key"),
    userData: optionalBytes(map.get("user_data"), 0, "user_data"),
    nonce: optionalBytes(map.get("nonce"), 0, "nonce"),
  };
}

/**
 * The inverse of `decodeAttestationPayload`, for the simulated platform: a definite-length map
 * with all nine keys in NSM's order, absent optional fields as null. Refuses (UsageError) a
 * document the decoder would not accept, so nothing unverifiable gets signed.
 */
export function encodeAttestationPayload(doc: NitroDocument): Uint8Array {
  const pcrs = new Map([...doc.pcrs].sort(([a], [b]) => a - b));
  const values: Record<(typeof KEYS)[number], unknown> = {
    module_id: doc.moduleId,
    digest: doc.digest,
    timestamp: doc.timestamp,
    pcrs,
    certificate: doc.certificate,
    cabundle: [...doc.cabundle],
    public_key: doc.publicKey,
    user_data: doc.userData,
    nonce: doc.nonce,
  };
  // Keep insertion order instead of cborg's default length-first key sort.
  const bytes = encode(new Map(KEYS.map((k) => [k, values[k]])), { mapSorter: () => 0 });
  try {
    decodeAttestationPayload(bytes);
  } catch (e) {
    throw new UsageError("payload: document does not satisfy the attestation document format", { cause: e });
  }
  return bytes;
}

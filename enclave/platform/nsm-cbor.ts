/**
 * The Nitro Secure Module's request and response messages (aws-nitro-enclaves-nsm-api
 * src/api/mod.rs): serde's externally tagged enums in CBOR. An attestation request is
 * {"Attestation": {"user_data", "nonce", "public_key"}} (byte string or null each, in that order,
 * as the reference library writes it); the answer is {"Attestation": {"document": bstr}} or
 * {"Error": "<ErrorCode>"}.
 */
import { encode } from "cborg";
import { UsageError } from "../../attestation/errors.js";
import { decodeCbor, plainBytes } from "../../attestation/nitro/cbor.js";
import { MAX_AUX_BYTES } from "../../attestation/nitro/document.js";
import { PlatformError } from "./platform-error.js";

/** The driver's request and response buffer sizes (include/uapi/linux/nsm.h). */
export const NSM_REQUEST_MAX_SIZE = 0x1000;
export const NSM_RESPONSE_MAX_SIZE = 0x3000;

/** ErrorCode variants the NSM can answer with. */
export const NSM_ERROR_CODES = [
  "InvalidArgument",
  "InvalidIndex",
  "InvalidResponse",
  "ReadOnlyIndex",
  "InvalidOperation",
  "BufferTooSmall",
  "InputTooLarge",
  "InternalError",
] as const;
export type NsmErrorCode = (typeof NSM_ERROR_CODES)[number];
const KNOWN_ERRORS: ReadonlySet<string> = new Set(NSM_ERROR_CODES);

export interface NsmAttestationRequest {
  userData?: Uint8Array;
  nonce?: Uint8Array;
  publicKey?: Uint8Array;
}

export function encodeAttestationRequest(req: NsmAttestationRequest): Uint8Array {
  const field = (v: Uint8Array | undefined, name: string): Uint8Array | null => {
    if (v === undefined) return null;
    if (!(v instanceof Uint8Array) || v.length > MAX_AUX_BYTES) {
      throw new UsageError(`nsm: ${name} is not a byte string of at most 1024 bytes`);
    }
    return v;
  };
  const body = new Map<string, Uint8Array | null>([
    ["user_data", field(req.userData, "user_data")],
    ["nonce", field(req.nonce, "nonce")],
    ["public_key", field(req.publicKey, "public_key")],
  ]);
  // Insertion order, not cborg's default length-first sort: the bytes the reference client sends.
  return encode(new Map([["Attestation", body]]), { mapSorter: () => 0 });
}

function bad(): never {
  throw new PlatformError("bad-output", "nsm: response is not an attestation answer");
}

/** The COSE_Sign1 document of an attestation answer; an NSM error answer throws PlatformError. */
export function decodeAttestationResponse(bytes: Uint8Array): Uint8Array {
  let answer: unknown;
  try {
    answer = decodeCbor(bytes, "nsm response");
  } catch (e) {
    throw new PlatformError("bad-output", "nsm: response is not well-formed CBOR", { cause: e });
  }
  if (!(answer instanceof Map) || answer.size !== 1) bad();
  const [variant, value] = [...answer][0] as [unknown, unknown];
  if (variant === "Error") {
    if (typeof value !== "string" || !KNOWN_ERRORS.has(value)) {
      throw new PlatformError("refused", "nsm: request refused with an unknown error");
    }
    throw new PlatformError("refused", `nsm: request refused (${value})`, { detail: value });
  }
  if (variant !== "Attestation" || !(value instanceof Map) || value.size !== 1) bad();
  const document: unknown = value.get("document");
  if (!(document instanceof Uint8Array) || document.length === 0) bad();
  return plainBytes(document);
}

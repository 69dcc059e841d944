/**
 * What the enclave's evidence commits to, in one place: its public keys, the active contract
 * and the verifier's fresh nonce. The 64-byte value goes into SEV-SNP REPORT_DATA or Nitro
 * user_data, so a report can only vouch for these keys, this contract, this request.
 */
import canonicalize from "canonicalize";
import { concatBytes, fromHex, sha256, sha512 } from "./bytes.js";
import { UsageError } from "./errors.js";

/** The enclave's public keys as published next to its evidence. */
export interface EnclaveKeys {
  /** ES256 public JWK that signs responses and audit entries. */
  signingKey: JsonWebKey;
  /** age X25519 recipient ("age1...") for data, grants and JWE to the enclave. */
  ageRecipient: string;
}

const LABEL = new TextEncoder().encode("cleanroom evidence binding v1\0");
const NO_CONTRACT = new Uint8Array(32);
export const MIN_NONCE_BYTES = 16;
export const MAX_NONCE_BYTES = 64;

/** SHA-256 of the RFC 8785 form of the public keys (only the public JWK members). */
export async function keysDigest(keys: EnclaveKeys): Promise<Uint8Array> {
  const { kty, crv, x, y } = keys.signingKey;
  const text = canonicalize({ signingKey: { kty, crv, x, y }, ageRecipient: keys.ageRecipient });
  if (text === undefined) throw new UsageError("binding: keys are not serialisable");
  return sha256(new TextEncoder().encode(text));
}

export function checkNonce(nonce: Uint8Array): void {
  if (nonce.length < MIN_NONCE_BYTES || nonce.length > MAX_NONCE_BYTES) {
    throw new UsageError("binding: nonce must be 16 to 64 bytes");
  }
}

/**
 * REPORT_DATA / user_data = SHA-512(label ‖ keysDigest ‖ contractDigest or 32 zero bytes ‖
 * len(nonce) ‖ nonce). Fixed-width fields and the length byte make the encoding unambiguous.
 */
export async function bindingData(input: {
  keys: EnclaveKeys;
  contractDigest: string | null;
  nonce: Uint8Array;
}): Promise<Uint8Array> {
  checkNonce(input.nonce);
  const contract = input.contractDigest === null ? NO_CONTRACT : fromHex(input.contractDigest);
  if (contract.length !== 32) throw new UsageError("binding: contract digest must be 32 bytes");
  return sha512(
    concatBytes(
      LABEL,
      await keysDigest(input.keys),
      contract,
      new Uint8Array([input.nonce.length]),
      input.nonce,
    ),
  );
}

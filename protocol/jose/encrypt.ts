import { CompactEncrypt } from "jose";
import { UsageError } from "../../attestation/errors.js";
import { importX25519PublicKey } from "./x25519.js";

/** Key agreement straight to the content key: one recipient, so no key wrapping layer is needed. */
export const JWE_ALG = "ECDH-ES";
export const JWE_ENC = "A256GCM";

/**
 * Encrypt a signed request (compact JWS, marked cty "JOSE" per RFC 7516 §4.1.12) or raw bytes
 * to the enclave's attested X25519 key. Output: compact JWE {alg ECDH-ES, enc A256GCM, epk}.
 */
export async function encryptToEnclave(
  content: string | Uint8Array,
  enclavePublicJwk: JsonWebKey,
): Promise<string> {
  if (enclavePublicJwk.d !== undefined) throw new UsageError("enclave key must be public");
  const key = await importX25519PublicKey(enclavePublicJwk);
  const nested = typeof content === "string";
  const plaintext = nested ? new TextEncoder().encode(content) : content;
  return new CompactEncrypt(plaintext)
    .setProtectedHeader(nested ? { alg: JWE_ALG, enc: JWE_ENC, cty: "JOSE" } : { alg: JWE_ALG, enc: JWE_ENC })
    .encrypt(key);
}

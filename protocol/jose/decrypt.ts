import { compactDecrypt } from "jose";
import { JWE_ALG, JWE_ENC } from "./encrypt.js";
import { EnvelopeError } from "./errors.js";
import { isCanonicalCompact } from "./lib/jws.js";

export interface Decrypted {
  plaintext: Uint8Array;
  /** The nested compact JWS when the header says cty "JOSE". */
  jws?: string;
}

/**
 * Decrypt a compact JWE made by encryptToEnclave with the enclave's X25519 private key.
 * Only ECDH-ES / A256GCM, in canonical base64url (one spelling per envelope), is accepted; any
 * failure is an EnvelopeError with a fixed message.
 */
export async function decryptAtEnclave(jwe: string, enclavePrivateKey: CryptoKey): Promise<Decrypted> {
  if (typeof jwe !== "string" || !isCanonicalCompact(jwe, 5)) {
    throw new EnvelopeError("envelope is not a canonical compact JWE");
  }
  let result: Awaited<ReturnType<typeof compactDecrypt>>;
  try {
    result = await compactDecrypt(jwe, enclavePrivateKey, {
      keyManagementAlgorithms: [JWE_ALG],
      contentEncryptionAlgorithms: [JWE_ENC],
    });
  } catch {
    throw new EnvelopeError("envelope does not decrypt");
  }
  const { plaintext, protectedHeader } = result;
  if (protectedHeader.zip !== undefined) throw new EnvelopeError("compressed envelopes are refused");
  if (protectedHeader.cty === undefined) return { plaintext };
  if (protectedHeader.cty !== "JOSE") throw new EnvelopeError("unsupported envelope content type");
  let jws: string;
  try {
    jws = new TextDecoder("utf-8", { fatal: true }).decode(plaintext);
  } catch {
    throw new EnvelopeError("nested JWS is not text");
  }
  return { plaintext, jws };
}

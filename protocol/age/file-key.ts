/** What the 16-byte file key derives (C2SP age, "File key", "Header MAC", "Payload"). */
import { hkdfSha256 } from "./kdf.js";

export const FILE_KEY_BYTES = 16;
export const PAYLOAD_NONCE_BYTES = 16;

export function generateFileKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(FILE_KEY_BYTES));
}

async function macKey(fileKey: Uint8Array, usage: KeyUsage): Promise<CryptoKey> {
  const raw = await hkdfSha256(fileKey, new Uint8Array(0), "header");
  return crypto.subtle.importKey("raw", raw as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, [
    usage,
  ]);
}

/** HMAC-SHA-256 over the header through "---", keyed by HKDF(file key, "", "header"). */
export async function headerMac(fileKey: Uint8Array, macInput: Uint8Array): Promise<Uint8Array> {
  const key = await macKey(fileKey, "sign");
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, macInput as BufferSource));
}

/** Constant-time check (WebCrypto's HMAC verify) of a parsed header's MAC. */
export async function verifyHeaderMac(
  fileKey: Uint8Array,
  macInput: Uint8Array,
  mac: Uint8Array,
): Promise<boolean> {
  const key = await macKey(fileKey, "verify");
  return crypto.subtle.verify("HMAC", key, mac as BufferSource, macInput as BufferSource);
}

/** The 32-byte ChaCha20-Poly1305 key of the payload: HKDF(file key, nonce, "payload"). */
export function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Promise<Uint8Array> {
  return hkdfSha256(fileKey, nonce, "payload");
}

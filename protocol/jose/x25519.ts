/**
 * Conversions between raw 32-byte X25519 keys (what an age identity/recipient encodes) and the
 * OKP JWK / CryptoKey forms JOSE uses. Bech32 (age1…, AGE-SECRET-KEY-1…) is handled elsewhere.
 */
import { base64urlnopad } from "@scure/base";
import { base64url } from "jose";
import { concatBytes } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";

/** DER prefix of a PKCS#8 PrivateKeyInfo for X25519 (RFC 8410) holding a 32-byte key. */
const PKCS8_X25519_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);

function raw32(b: Uint8Array, what: string): Uint8Array {
  if (!(b instanceof Uint8Array) || b.length !== 32) throw new UsageError(`${what} must be 32 bytes`);
  return b;
}

function decode32(s: unknown, what: string): Uint8Array {
  if (typeof s !== "string") throw new UsageError(`${what} missing`);
  let b: Uint8Array;
  try {
    // Canonical only: one text per key.
    b = base64urlnopad.decode(s);
  } catch {
    throw new UsageError(`${what} is not base64url`);
  }
  return raw32(b, what);
}

function isX25519(jwk: JsonWebKey): boolean {
  return jwk.kty === "OKP" && jwk.crv === "X25519";
}

/** OKP JWK {kty, crv: "X25519", x} for a raw public key. */
export function x25519PublicJwk(publicKey: Uint8Array): JsonWebKey {
  return { kty: "OKP", crv: "X25519", x: base64url.encode(raw32(publicKey, "X25519 public key")) };
}

/** Raw public key of an X25519 OKP JWK (public or private). */
export function x25519PublicRaw(jwk: JsonWebKey): Uint8Array {
  if (!isX25519(jwk)) throw new UsageError("not an X25519 OKP JWK");
  return decode32(jwk.x, "X25519 public key");
}

/** Raw private key of an X25519 OKP private JWK. */
export function x25519PrivateRaw(jwk: JsonWebKey): Uint8Array {
  if (!isX25519(jwk)) throw new UsageError("not an X25519 OKP JWK");
  return decode32(jwk.d, "X25519 private key");
}

/** Public CryptoKey for an X25519 public key given raw or as an OKP JWK (any "d" is ignored). */
export async function importX25519PublicKey(publicKey: Uint8Array | JsonWebKey): Promise<CryptoKey> {
  const raw =
    publicKey instanceof Uint8Array ? raw32(publicKey, "X25519 public key") : x25519PublicRaw(publicKey);
  return crypto.subtle.importKey("raw", raw as BufferSource, { name: "X25519" }, true, []);
}

/** Private CryptoKey (deriveBits) for a raw X25519 private key; non-extractable by default. */
export async function importX25519PrivateKey(
  privateKey: Uint8Array,
  extractable = false,
): Promise<CryptoKey> {
  const der = concatBytes(PKCS8_X25519_PREFIX, raw32(privateKey, "X25519 private key"));
  return crypto.subtle.importKey("pkcs8", der as BufferSource, { name: "X25519" }, extractable, [
    "deriveBits",
  ]);
}

/** Full private OKP JWK {kty, crv, x, d}; x is derived from the private key. */
export async function x25519PrivateJwk(privateKey: Uint8Array): Promise<JsonWebKey> {
  const jwk = await crypto.subtle.exportKey("jwk", await importX25519PrivateKey(privateKey, true));
  return { kty: "OKP", crv: "X25519", x: jwk.x!, d: jwk.d! };
}

/** Raw public key belonging to a raw private key. */
export async function x25519PublicFromPrivate(privateKey: Uint8Array): Promise<Uint8Array> {
  return x25519PublicRaw(await x25519PrivateJwk(privateKey));
}

/**
 * X25519 over WebCrypto (Node 20 and current browsers), on raw 32-byte keys as age encodes them.
 * Secret scalars are imported through PKCS#8 because WebCrypto has no raw private-key import.
 */
import { base64urlnopad } from "@scure/base";
import { AgeDecryptError } from "./errors.js";

const ALG = { name: "X25519" } as const;
/** DER prefix of a PKCS#8 PrivateKeyInfo for X25519 (RFC 8410) holding a 32-byte key. */
const PKCS8_PREFIX = Uint8Array.of(
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x6e,
  0x04,
  0x22,
  0x04,
  0x20,
);

export interface X25519KeyPair {
  readonly privateKey: CryptoKey;
  readonly publicKey: Uint8Array;
}

/** Imports a 32-byte secret scalar and computes its public key. */
export async function importSecretKey(secret: Uint8Array): Promise<X25519KeyPair> {
  const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + secret.length);
  pkcs8.set(PKCS8_PREFIX);
  pkcs8.set(secret, PKCS8_PREFIX.length);
  // Extractable only so the public half can be read back as JWK "x"; the handle stays local.
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, ALG, true, ["deriveBits"]);
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  return { privateKey, publicKey: base64urlnopad.decode(jwk.x ?? "") };
}

/** A fresh key pair whose private half never leaves WebCrypto (for ephemeral shares). */
export async function generateKeyPair(): Promise<X25519KeyPair> {
  const pair = (await crypto.subtle.generateKey(ALG, false, ["deriveBits"])) as CryptoKeyPair;
  return {
    privateKey: pair.privateKey,
    publicKey: new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey)),
  };
}

/** X25519(secret, peer); a low-order peer (all-zero result) is refused, as age requires. */
export async function sharedSecret(privateKey: CryptoKey, peer: Uint8Array): Promise<Uint8Array> {
  let secret: Uint8Array;
  try {
    const pub = await crypto.subtle.importKey("raw", peer as BufferSource, ALG, false, []);
    secret = new Uint8Array(await crypto.subtle.deriveBits({ name: "X25519", public: pub }, privateKey, 256));
  } catch (cause) {
    throw new AgeDecryptError("X25519: invalid peer share", { cause });
  }
  if (secret.every((b) => b === 0)) throw new AgeDecryptError("X25519: invalid peer share");
  return secret;
}

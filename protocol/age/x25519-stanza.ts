/**
 * The X25519 recipient stanza (C2SP age, "X25519 recipient stanza"): wraps the file key to a
 * recipient's public key through an ephemeral share, and unwraps it with an identity.
 * ChaCha20-Poly1305 is not in WebCrypto, so the 32-byte wrap uses @noble/ciphers (portable).
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { AgeFormatError } from "./errors.js";
import { FILE_KEY_BYTES } from "./file-key.js";
import { decodeBase64, encodeBase64, type Stanza } from "./header.js";
import { hkdfSha256 } from "./kdf.js";
import { generateKeyPair, sharedSecret, type X25519KeyPair } from "./x25519.js";

export const X25519_STANZA_TYPE = "X25519";
const LABEL = "age-encryption.org/v1/X25519";
const SHARE_BYTES = 32;
const WRAPPED_BYTES = FILE_KEY_BYTES + 16;
const ZERO_NONCE = new Uint8Array(12);

async function wrapKey(shared: Uint8Array, share: Uint8Array, recipient: Uint8Array): Promise<Uint8Array> {
  const salt = new Uint8Array(SHARE_BYTES * 2);
  salt.set(share);
  salt.set(recipient, SHARE_BYTES);
  return hkdfSha256(shared, salt, LABEL);
}

/** One stanza wrapping `fileKey` to `recipient` (a 32-byte public key), with a fresh ephemeral. */
export async function wrapX25519(fileKey: Uint8Array, recipient: Uint8Array): Promise<Stanza> {
  const ephemeral = await generateKeyPair();
  const key = await wrapKey(
    await sharedSecret(ephemeral.privateKey, recipient),
    ephemeral.publicKey,
    recipient,
  );
  const body = chacha20poly1305(key, ZERO_NONCE).encrypt(fileKey);
  return { args: [X25519_STANZA_TYPE, encodeBase64(ephemeral.publicKey)], body };
}

/**
 * The file key from the first X25519 stanza `identity` opens, or null when none is addressed
 * to it. A malformed X25519 stanza is refused outright, as the spec requires, even if another
 * stanza would have matched.
 */
export async function unwrapX25519(
  stanzas: readonly Stanza[],
  identity: X25519KeyPair,
): Promise<Uint8Array | null> {
  for (const { args, body } of stanzas) {
    if (args[0] !== X25519_STANZA_TYPE) continue;
    if (args.length !== 2) throw new AgeFormatError("X25519 stanza: wrong argument count");
    const share = decodeBase64(args[1]!, "X25519 stanza share");
    if (share.length !== SHARE_BYTES) throw new AgeFormatError("X25519 stanza: share length");
    // Checked before any decryption attempt, against partitioning-oracle attacks.
    if (body.length !== WRAPPED_BYTES) throw new AgeFormatError("X25519 stanza: body length");
    const key = await wrapKey(await sharedSecret(identity.privateKey, share), share, identity.publicKey);
    try {
      return chacha20poly1305(key, ZERO_NONCE).decrypt(body);
    } catch {
      // Not for this identity: wrapped to someone else. Try the next stanza.
    }
  }
  return null;
}

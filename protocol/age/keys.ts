/**
 * age X25519 key strings (C2SP age, "The X25519 recipient type"): identities are Bech32 with
 * HRP "AGE-SECRET-KEY-" (written upper case), recipients Bech32 with HRP "age" (lower case).
 * Bech32 itself is @scure/base's, which checks the checksum, mixed case and padding bits.
 */
import { bech32 } from "@scure/base";
import { AgeFormatError } from "./errors.js";
import { importSecretKey } from "./x25519.js";

const IDENTITY_HRP = "age-secret-key-";
const RECIPIENT_HRP = "age";
const KEY_BYTES = 32;

function decodeKey(text: string, hrp: string, upper: boolean, what: string): Uint8Array {
  // age writes each kind in one case only; accepting the other would give one key two spellings.
  if (text !== (upper ? text.toUpperCase() : text.toLowerCase())) {
    throw new AgeFormatError(`${what}: wrong letter case`);
  }
  let key: Uint8Array;
  try {
    const { prefix, words } = bech32.decode(text as `${string}1${string}`);
    if (prefix !== hrp) throw new AgeFormatError(`${what}: wrong type`);
    key = bech32.fromWords(words);
  } catch (cause) {
    if (cause instanceof AgeFormatError) throw cause;
    throw new AgeFormatError(`${what}: invalid Bech32`, { cause });
  }
  if (key.length !== KEY_BYTES) throw new AgeFormatError(`${what}: wrong key length`);
  return key;
}

function encodeKey(key: Uint8Array, hrp: string, what: string): string {
  if (key.length !== KEY_BYTES) throw new AgeFormatError(`${what}: wrong key length`);
  return bech32.encode(hrp, bech32.toWords(key));
}

/** "AGE-SECRET-KEY-1..." -> the 32-byte X25519 secret scalar. */
export function decodeIdentity(identity: string): Uint8Array {
  return decodeKey(identity, IDENTITY_HRP, true, "identity");
}

export function encodeIdentity(secret: Uint8Array): string {
  return encodeKey(secret, IDENTITY_HRP, "identity").toUpperCase();
}

/** "age1..." -> the 32-byte X25519 public key. */
export function decodeRecipient(recipient: string): Uint8Array {
  return decodeKey(recipient, RECIPIENT_HRP, false, "recipient");
}

export function encodeRecipient(publicKey: Uint8Array): string {
  return encodeKey(publicKey, RECIPIENT_HRP, "recipient");
}

/** A new identity: 32 bytes from the CSPRNG, as the spec generates them. */
export function generateIdentity(): string {
  return encodeIdentity(crypto.getRandomValues(new Uint8Array(KEY_BYTES)));
}

/** The recipient ("age1...") that encrypts to `identity`. */
export async function identityToRecipient(identity: string): Promise<string> {
  const { publicKey } = await importSecretKey(decodeIdentity(identity));
  return encodeRecipient(publicKey);
}

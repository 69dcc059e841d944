/**
 * The age operations the SDK needs outside Node's streaming path: decrypting a (small) result
 * with the party identity, and recovering an upload's file key from its stored header.
 * Both run on WebCrypto, so they work in a browser bundle.
 */
import { Decrypter } from "age-encryption";
import { openHeader } from "../../protocol/age/envelope.js";
import { AgeDecryptError, AgeFormatError } from "../../protocol/age/errors.js";
import { parseHeader } from "../../protocol/age/header.js";

export type AgeDecrypt = (ciphertext: Uint8Array, identity: string) => Promise<Uint8Array>;

/** Decrypts a whole age file with the age-encryption package (portable, pure JS). */
export const decryptAge: AgeDecrypt = async (ciphertext, identity) => {
  const d = new Decrypter();
  d.addIdentity(identity);
  try {
    return await d.decrypt(ciphertext);
  } catch (cause) {
    throw new AgeDecryptError("result does not decrypt with the party identity", { cause });
  }
};

/** The 16-byte file key of an age file whose header (`headerBytes`) names our recipient. */
export async function recoverFileKey(headerBytes: Uint8Array, identity: string): Promise<Uint8Array> {
  const { header, length } = parseHeader(headerBytes);
  if (length !== headerBytes.length) throw new AgeFormatError("header: trailing bytes");
  return openHeader(header, [identity]);
}

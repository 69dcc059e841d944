/**
 * The header as a key envelope: a fresh file key wrapped to every recipient and MACed (encrypt),
 * or the file key recovered with one of our identities and the MAC checked (decrypt).
 */
import { UsageError } from "../../attestation/errors.js";
import { AgeDecryptError, AgeNoIdentityError } from "./errors.js";
import { generateFileKey, headerMac, verifyHeaderMac } from "./file-key.js";
import { type AgeHeader, formatHeader, formatHeaderMacInput } from "./header.js";
import { decodeIdentity, decodeRecipient } from "./keys.js";
import { importSecretKey } from "./x25519.js";
import { unwrapX25519, wrapX25519 } from "./x25519-stanza.js";

/** The encoded header for `recipients` ("age1..." strings) and the file key it carries. */
export async function sealHeader(
  recipients: readonly string[],
): Promise<{ header: Uint8Array; fileKey: Uint8Array }> {
  if (recipients.length === 0) throw new UsageError("encrypt: no recipients");
  // Decode all first so a bad recipient string fails before any work.
  const publicKeys = recipients.map(decodeRecipient);
  const fileKey = generateFileKey();
  const stanzas = await Promise.all(publicKeys.map((pk) => wrapX25519(fileKey, pk)));
  const macInput = formatHeaderMacInput(stanzas);
  return { header: formatHeader(macInput, await headerMac(fileKey, macInput)), fileKey };
}

/** The file key of `header` for one of `identities` ("AGE-SECRET-KEY-1..."), MAC verified. */
export async function openHeader(header: AgeHeader, identities: readonly string[]): Promise<Uint8Array> {
  const secrets = identities.map(decodeIdentity);
  for (const secret of secrets) {
    const fileKey = await unwrapX25519(header.stanzas, await importSecretKey(secret));
    if (fileKey === null) continue;
    if (!(await verifyHeaderMac(fileKey, header.macInput, header.mac))) {
      throw new AgeDecryptError("header: MAC mismatch");
    }
    return fileKey;
  }
  throw new AgeNoIdentityError("header: no stanza for the given identities");
}

/** Age files and inputs built by hand for the streaming tests (serial and parallel decryption). */
import { createCipheriv } from "node:crypto";
import { generateFileKey, headerMac, payloadKey } from "../../protocol/age/file-key.js";
import { formatHeader, formatHeaderMacInput, type Stanza } from "../../protocol/age/header.js";
import { decodeRecipient, generateIdentity, identityToRecipient } from "../../protocol/age/keys.js";
import { wrapX25519 } from "../../protocol/age/x25519-stanza.js";

export async function party(): Promise<{ identity: string; recipient: string }> {
  const identity = generateIdentity();
  return { identity, recipient: await identityToRecipient(identity) };
}

/** Splits `bytes` at the given cut points (sorted, deduplicated, in range). */
export function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

/**
 * A hand-built file: custom stanzas around a real X25519 stanza, then the given chunks with the
 * given last-chunk flags, so that encoder mistakes the spec forbids can be produced on purpose.
 */
export async function craft(
  recipient: string,
  chunks: { plaintext: Uint8Array; last: boolean }[],
  extraStanzas: Stanza[] = [],
): Promise<Uint8Array> {
  const fileKey = generateFileKey();
  const stanzas = [...extraStanzas, await wrapX25519(fileKey, decodeRecipient(recipient))];
  const macInput = formatHeaderMacInput(stanzas);
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  const key = await payloadKey(fileKey, nonce);
  const parts: Uint8Array[] = [formatHeader(macInput, await headerMac(fileKey, macInput)), nonce];
  chunks.forEach(({ plaintext, last }, i) => {
    const iv = Buffer.alloc(12);
    iv.writeUInt32BE(i, 7);
    iv[11] = last ? 1 : 0;
    const c = createCipheriv("chacha20-poly1305", key, iv, { authTagLength: 16 });
    parts.push(c.update(plaintext), c.final(), c.getAuthTag());
  });
  return new Uint8Array(Buffer.concat(parts));
}

/** HKDF-SHA-256 with a 32-byte output, the only length age uses. WebCrypto, so portable. */
const enc = new TextEncoder();

export async function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", ikm as BufferSource, "HKDF", false, ["deriveBits"]);
  const params = { name: "HKDF", hash: "SHA-256", salt: salt as BufferSource, info: enc.encode(info) };
  return new Uint8Array(await crypto.subtle.deriveBits(params, key, 256));
}

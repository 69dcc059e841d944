/** Byte-level helpers the tests share. */

/** Where `needle` first occurs in `hay` at or after `from`; throws when it does not. */
export function findBytes(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  const at = Buffer.from(hay.buffer, hay.byteOffset, hay.length).indexOf(needle, from);
  if (at < 0) throw new Error("test: bytes not found");
  return at;
}

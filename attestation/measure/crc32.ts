/** CRC-32/ISO-HDLC (the zlib crc32), incremental over several chunks; a checksum, not crypto. */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(...chunks: Uint8Array[]): number {
  let c = 0xffffffff;
  for (const chunk of chunks) for (const b of chunk) c = TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

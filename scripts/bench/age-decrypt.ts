/**
 * Throughput of our streaming age decryption against the floor it is built on: raw node:crypto
 * ChaCha20-Poly1305 over the same number of 64 KiB chunks. The ratio is what the age framing
 * (header, buffering, STREAM nonces, Readable plumbing) costs. Target: ratio >= 0.80.
 *
 * Run: npx tsc -p tsconfig.build.json && node dist/scripts/bench/age-decrypt.js [MiB]
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { generateIdentity, identityToRecipient } from "../../protocol/age/keys.js";
import { CHUNK_BYTES, decryptStream, encryptBytes } from "../../protocol/age/stream-node.js";

const TAG_BYTES = 16;
const ROUNDS = 5;

/** Input as a file stream delivers it: 64 KiB pieces, not aligned to sealed 64 KiB + 16 chunks. */
function* filePieces(bytes: Uint8Array): Generator<Uint8Array> {
  for (let o = 0; o < bytes.length; o += CHUNK_BYTES) yield bytes.subarray(o, o + CHUNK_BYTES);
}

async function timeAge(ciphertext: Uint8Array, identity: string, expected: number): Promise<number> {
  const start = performance.now();
  let n = 0;
  for await (const chunk of decryptStream(filePieces(ciphertext), identity)) n += (chunk as Buffer).length;
  const seconds = (performance.now() - start) / 1000;
  if (n !== expected) throw new Error("bench: decrypted length mismatch");
  return seconds;
}

function sealRaw(plaintext: Uint8Array): { key: ReturnType<typeof createSecretKey>; chunks: Buffer[] } {
  const key = createSecretKey(randomBytes(32));
  const chunks: Buffer[] = [];
  const nonce = Buffer.alloc(12);
  for (let o = 0, i = 0; o < plaintext.length; o += CHUNK_BYTES, i++) {
    nonce.writeUInt32BE(i, 7);
    const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_BYTES });
    chunks.push(Buffer.concat([c.update(plaintext.subarray(o, o + CHUNK_BYTES)), c.final(), c.getAuthTag()]));
  }
  return { key, chunks };
}

function timeRaw(raw: ReturnType<typeof sealRaw>, expected: number): number {
  const nonce = Buffer.alloc(12);
  const start = performance.now();
  let n = 0;
  raw.chunks.forEach((sealed, i) => {
    nonce.writeUInt32BE(i, 7);
    const d = createDecipheriv("chacha20-poly1305", raw.key, nonce, { authTagLength: TAG_BYTES });
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    n += d.update(sealed.subarray(0, sealed.length - TAG_BYTES)).length;
    d.final();
  });
  const seconds = (performance.now() - start) / 1000;
  if (n !== expected) throw new Error("bench: decrypted length mismatch");
  return seconds;
}

/** Best of a few rounds each, interleaved so both see the same machine state. */
export async function benchAgeDecrypt(
  bytes: number,
): Promise<{ ageMBps: number; rawMBps: number; ratio: number }> {
  const plaintext = randomBytes(bytes);
  const identity = generateIdentity();
  const ciphertext = await encryptBytes(plaintext, [await identityToRecipient(identity)]);
  const raw = sealRaw(plaintext);
  let ageBest = Number.POSITIVE_INFINITY;
  let rawBest = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS; r++) {
    rawBest = Math.min(rawBest, timeRaw(raw, bytes));
    ageBest = Math.min(ageBest, await timeAge(ciphertext, identity, bytes));
  }
  const mb = bytes / 1e6;
  const ageMBps = mb / ageBest;
  const rawMBps = mb / rawBest;
  return { ageMBps, rawMBps, ratio: ageMBps / rawMBps };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const mib = Number(process.argv[2] ?? 256);
  const { ageMBps, rawMBps, ratio } = await benchAgeDecrypt(mib * 1024 * 1024);
  console.log(
    `age decrypt ${mib} MiB: age ${ageMBps.toFixed(0)} MB/s, raw ChaCha20-Poly1305 ${rawMBps.toFixed(0)} MB/s, ratio ${ratio.toFixed(3)}`,
  );
}

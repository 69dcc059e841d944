/**
 * Throughput of our streaming age decryption against the floor it is built on: raw node:crypto
 * ChaCha20-Poly1305 over the same number of 64 KiB chunks. The ratio is what the age framing
 * (header, buffering, STREAM nonces, Readable plumbing) costs. Target: ratio >= 0.80.
 *
 * `openssl speed` over the same 64 KiB blocks, where installed, shows what the CPU can do at all.
 * The enclave's loads use the parallel path (worker threads, protocol/age/parallel-decrypt.ts),
 * timed last over the same ciphertext.
 */

import { spawnSync } from "node:child_process";
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { generateIdentity, identityToRecipient } from "../../protocol/age/keys.js";
import { decryptBatches } from "../../protocol/age/parallel-decrypt.js";
import { CHUNK_BYTES, decryptStream, encryptBytes } from "../../protocol/age/stream-node.js";

const TAG_BYTES = 16;
const ROUNDS = 10;

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

async function timeParallel(ciphertext: Uint8Array, identity: string, workers: number, expected: number) {
  const start = performance.now();
  let n = 0;
  for await (const b of decryptBatches(filePieces(ciphertext), identity, { workers })) n += b.bytes.length;
  const seconds = (performance.now() - start) / 1000;
  if (n !== expected) throw new Error("bench: decrypted length mismatch");
  return seconds;
}

/**
 * Best of a few rounds each, interleaved so both see the same machine state; then the enclave's
 * parallel decryption on `workers` threads (worker start-up included, as in a load).
 */
export async function benchAgeDecrypt(
  bytes: number,
  workers = 1,
): Promise<{
  mib: number;
  ageMBps: number;
  rawMBps: number;
  ratio: number;
  parallelMBps: number;
  workers: number;
}> {
  const plaintext = randomBytes(bytes);
  const identity = generateIdentity();
  const ciphertext = await encryptBytes(plaintext, [await identityToRecipient(identity)]);
  const raw = sealRaw(plaintext);
  let ageBest = Number.POSITIVE_INFINITY;
  let rawBest = Number.POSITIVE_INFINITY;
  let parallelBest = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS; r++) {
    rawBest = Math.min(rawBest, timeRaw(raw, bytes));
    ageBest = Math.min(ageBest, await timeAge(ciphertext, identity, bytes));
  }
  for (let r = 0; r < 3; r++) {
    parallelBest = Math.min(parallelBest, await timeParallel(ciphertext, identity, workers, bytes));
  }
  const mb = bytes / 1e6;
  const ageMBps = mb / ageBest;
  const rawMBps = mb / rawBest;
  return {
    mib: bytes / 2 ** 20,
    ageMBps,
    rawMBps,
    ratio: ageMBps / rawMBps,
    parallelMBps: mb / parallelBest,
    workers,
  };
}

/**
 * `openssl speed -evp chacha20-poly1305` at 64 KiB blocks, in MB/s; null when openssl is missing
 * or prints no figure. Its figures are "1000s of bytes per second", e.g. "ChaCha20-Poly1305 5275184.61k".
 */
export function opensslChachaMBps(seconds = 2): number | null {
  const run = spawnSync(
    "openssl",
    ["speed", "-evp", "chacha20-poly1305", "-bytes", String(CHUNK_BYTES), "-seconds", String(seconds)],
    { encoding: "utf8", timeout: (seconds + 30) * 1000 },
  );
  if (run.status !== 0 || typeof run.stdout !== "string") return null;
  const m = /^chacha20-poly1305\s+([\d.]+)k\s*$/im.exec(run.stdout);
  return m ? (Number(m[1]) * 1000) / 1e6 : null;
}

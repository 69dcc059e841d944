/**
 * age v1 encryption and decryption for Node, streaming. The payload (C2SP age, "Payload") runs on
 * node:crypto's native ChaCha20-Poly1305, which is why this one file of protocol/age/ is
 * Node-only; browsers use the age-encryption package, which reads and writes the same format.
 *
 * Decrypted chunks are released as each one authenticates: a consumer must treat a stream
 * error (tampering, truncation) as the failure of the whole file and discard what it read.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { ByteQueue } from "./byte-queue.js";
import { openHeader, sealHeader } from "./envelope.js";
import { AgeDecryptError } from "./errors.js";
import { PAYLOAD_NONCE_BYTES, payloadKey } from "./file-key.js";
import type { AgeHeader } from "./header.js";
import { HeaderReader } from "./header-reader.js";

export const CHUNK_BYTES = 64 * 1024;
export const TAG_BYTES = 16;
export const SEALED_CHUNK_BYTES = CHUNK_BYTES + TAG_BYTES;

export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
/** One "AGE-SECRET-KEY-1..." string or several; the first that opens a stanza is used. */
export type Identities = string | readonly string[];

/** The STREAM nonce: an 11-byte big-endian chunk counter, then 0x01 on the final chunk only. */
class ChunkNonce {
  readonly bytes = Buffer.alloc(12);
  first = true;

  next(): void {
    this.first = false;
    for (let i = 10; i >= 0; i--) {
      this.bytes[i] = (this.bytes[i]! + 1) & 0xff;
      if (this.bytes[i] !== 0) return;
    }
    throw new AgeDecryptError("payload: chunk counter overflow");
  }

  markLast(): void {
    this.bytes[11] = 1;
  }

  /** The nonce of chunk `index` (not the final one). */
  static at(index: number): ChunkNonce {
    const n = new ChunkNonce();
    n.bytes.writeUIntBE(Math.floor(index / 2 ** 40), 0, 6);
    n.bytes.writeUIntBE(index % 2 ** 40, 6, 5);
    n.first = index === 0;
    return n;
  }
}

/** One sealed chunk: the ciphertext, then the tag. */
function sealChunk(key: KeyObject, nonce: Buffer, plaintext: Uint8Array): [Buffer, Buffer] {
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_BYTES });
  const body = cipher.update(plaintext);
  cipher.final();
  return [body, cipher.getAuthTag()];
}

/** One chunk's plaintext, returned only after its tag verifies. */
function openChunk(key: KeyObject, nonce: Buffer, sealed: Uint8Array): Buffer {
  const decipher = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const plaintext = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
  try {
    decipher.final();
  } catch (cause) {
    throw new AgeDecryptError("payload: chunk authentication failed", { cause });
  }
  return plaintext;
}

/** The source's own iterator, sync or async: no extra generator layer per input piece. */
export function iterate(source: ByteSource): Iterator<Uint8Array> | AsyncIterator<Uint8Array> {
  return Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
}

/** Ciphertext pieces of an age file encrypting `source` to every recipient ("age1..."). */
export async function* encryptChunks(
  source: ByteSource,
  recipients: readonly string[],
): AsyncGenerator<Uint8Array> {
  const { header, fileKey } = await sealHeader(recipients);
  yield* encryptChunksSealed(source, { header, fileKey, payloadNonce: randomBytes(PAYLOAD_NONCE_BYTES) });
}

/** What fixes an age file's bytes besides its plaintext: the header, its file key, the payload nonce. */
export interface SealedPayload {
  header: Uint8Array;
  fileKey: Uint8Array;
  payloadNonce: Uint8Array;
}

/**
 * The age file of `source` under an existing header and payload nonce: the same plaintext gives
 * the same bytes again (a resumed upload re-creates what it sent before). From `fromChunk` > 0,
 * `source` starts at that chunk's plaintext and only the ciphertext from that chunk on is yielded.
 * Never encrypt different plaintext under one `sealed`: the keystream would repeat.
 */
export async function* encryptChunksSealed(
  source: ByteSource,
  sealed: SealedPayload,
  fromChunk = 0,
): AsyncGenerator<Uint8Array> {
  const key = createSecretKey(await payloadKey(sealed.fileKey, sealed.payloadNonce));
  if (fromChunk === 0) {
    yield sealed.header;
    yield sealed.payloadNonce;
  }
  const queue = new ByteQueue();
  const scratch = Buffer.allocUnsafe(CHUNK_BYTES);
  const nonce = ChunkNonce.at(fromChunk);
  for await (const piece of source) {
    queue.push(piece);
    // A full chunk is held back until more input proves it is not the final one.
    while (queue.length > CHUNK_BYTES) {
      yield* sealChunk(key, nonce.bytes, queue.take(CHUNK_BYTES, scratch));
      nonce.next();
    }
  }
  // The final chunk: short, full, or empty only when the whole plaintext is empty.
  nonce.markLast();
  yield* sealChunk(key, nonce.bytes, queue.take(queue.length, scratch));
}

/** Plaintext chunks of the age file `source`, each released once it authenticates. */
export function decryptChunks(source: ByteSource, identities: Identities): AsyncGenerator<Buffer> {
  const list = typeof identities === "string" ? [identities] : identities;
  return decryptChunksWith(source, (header) => openHeader(header, list));
}

/** An age file's payload once its header is read and its file key opened. */
export interface PayloadReader {
  /** The payload's ChaCha20-Poly1305 key: HKDF(file key, payload nonce, "payload"). */
  key: KeyObject;
  /** Sealed payload bytes read and not yet taken. */
  queue: ByteQueue;
  /** Reads until `n` bytes are queued; false if the input ends first. */
  fill(n: number): Promise<boolean>;
}

/**
 * Reads `input` through the header (framed, parsed, its file key recovered by `openKey`, which
 * checks the header MAC) and the payload nonce. Serial and parallel decryption share it, so both
 * refuse a bad header or a missing nonce alike. The caller owns (and closes) `input`.
 */
export async function openPayload(
  input: Iterator<Uint8Array> | AsyncIterator<Uint8Array>,
  openKey: (header: AgeHeader) => Promise<Uint8Array>,
): Promise<PayloadReader> {
  const queue = new ByteQueue();
  const reader = new HeaderReader();
  let framed: ReturnType<HeaderReader["push"]>;
  do {
    const r = await input.next();
    framed = r.done ? reader.end() : reader.push(r.value);
  } while (framed === undefined);
  for (const rest of framed.rest) queue.push(rest);
  const fileKey = await openKey(framed.header);
  const fill = async (n: number): Promise<boolean> => {
    while (queue.length < n) {
      const r = await input.next();
      if (r.done) return false;
      queue.push(r.value);
    }
    return true;
  };
  if (!(await fill(PAYLOAD_NONCE_BYTES))) throw new AgeDecryptError("payload: truncated");
  const payloadNonce = queue.take(PAYLOAD_NONCE_BYTES, new Uint8Array(PAYLOAD_NONCE_BYTES)).slice();
  return { key: createSecretKey(await payloadKey(fileKey, payloadNonce)), queue, fill };
}

/**
 * The final chunk's rule (C2SP age, "Payload"): at least a tag, and empty only when it is also the
 * first chunk (an empty plaintext). `length` is its sealed size.
 */
export function checkFinalChunk(length: number, isFirstChunk: boolean): void {
  if (length < TAG_BYTES) throw new AgeDecryptError("payload: truncated");
  if (length === TAG_BYTES && !isFirstChunk) throw new AgeDecryptError("payload: empty final chunk");
}

/**
 * Plaintext chunks of the age file `source` whose file key `openKey` recovers from the parsed
 * header (and whose header MAC it has checked); the payload path is the same for every caller.
 */
export async function* decryptChunksWith(
  source: ByteSource,
  openKey: (header: AgeHeader) => Promise<Uint8Array>,
): AsyncGenerator<Buffer> {
  const input = iterate(source);
  try {
    const { key, queue, fill } = await openPayload(input, openKey);
    const scratch = Buffer.allocUnsafe(SEALED_CHUNK_BYTES);
    const nonce = new ChunkNonce();
    // A full sealed chunk with at least one more byte after it cannot be the final chunk.
    while (await fill(SEALED_CHUNK_BYTES + 1)) {
      yield openChunk(key, nonce.bytes, queue.take(SEALED_CHUNK_BYTES, scratch));
      nonce.next();
    }
    const last = queue.length;
    checkFinalChunk(last, nonce.first);
    nonce.markLast();
    yield openChunk(key, nonce.bytes, queue.take(last, scratch));
  } finally {
    await input.return?.();
  }
}

/** An age file (byte stream) encrypting `input` to every recipient. */
export function encryptStream(input: ByteSource, recipients: readonly string[]): Readable {
  return Readable.from(encryptChunks(input, recipients), { objectMode: false });
}

/** The plaintext of the age file `input`; errors with a typed AgeError on any failure. */
export function decryptStream(input: ByteSource, identities: Identities): Readable {
  return Readable.from(decryptChunks(input, identities), { objectMode: false });
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  const all = Buffer.concat(parts);
  // A plain Uint8Array view (no copy), as the rest of the codebase expects.
  return new Uint8Array(all.buffer, all.byteOffset, all.length);
}

/** Whole-buffer encryption for small payloads. */
export function encryptBytes(plaintext: Uint8Array, recipients: readonly string[]): Promise<Uint8Array> {
  return collect(encryptChunks([plaintext], recipients));
}

/** Whole-buffer decryption for small payloads. */
export function decryptBytes(ciphertext: Uint8Array, identities: Identities): Promise<Uint8Array> {
  return collect(decryptChunks([ciphertext], identities));
}

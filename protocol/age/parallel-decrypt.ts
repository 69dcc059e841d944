/**
 * age decryption with the payload opened on worker threads (decrypt-pool.ts). STREAM chunks are
 * independently decryptable by index, so the main thread reads the header and the payload nonce
 * exactly as the serial path does (stream-node.ts `openPayload`), cuts the sealed payload into
 * batches of whole chunks and hands each to a worker with its first chunk's index; plaintext
 * batches come back, and are released, in file order.
 *
 * Which chunk is final is decided here exactly as in the serial path: a batch is sent only once at
 * least one more byte follows it, so none of its chunks is final and each is a full 64 KiB + 16;
 * when the input ends, what is left is the last batch, whose last chunk is flagged final and
 * checked by the same rule (`checkFinalChunk`). So truncation (the cut chunk is opened as final
 * and fails), reordering or duplication (a chunk opened under another index fails), trailing
 * bytes and an empty final chunk fail as they do serially, with the same errors, and every batch
 * before the failing one is still released first. A failing input (a transport error, or a digest
 * check at its end) fails at its position too, after the batches read before it. Node-only, like
 * stream-node.ts.
 */
import { createDecipheriv } from "node:crypto";
import {
  BatchAuthenticationError,
  DecryptPool,
  type MovedBytes,
  type OpenedBatch,
  openBatchHere,
} from "./decrypt-pool.js";
import { openHeader } from "./envelope.js";
import { AgeDecryptError } from "./errors.js";
import type { AgeHeader } from "./header.js";
import {
  type ByteSource,
  checkFinalChunk,
  type Identities,
  iterate,
  openPayload,
  SEALED_CHUNK_BYTES,
} from "./stream-node.js";

export interface ParallelDecryptOptions {
  /** Worker threads opening batches (at least 1). */
  workers: number;
  /** Sealed chunks per batch. Default 64 (4 MiB of plaintext). */
  batchChunks?: number;
  /** A byte value the workers count in each batch's plaintext (e.g. 0x22, CSV's quote). */
  countByte?: number;
  /**
   * The input's pieces are this call's alone: nothing else reads them or hands them in again
   * (a network body's chunks). A piece that is its whole ArrayBuffer then moves to the worker that
   * opens it instead of being copied into the batch here; only bytes shared with the next batch
   * are copied. Node's main thread then neither copies the ciphertext nor collects its buffers.
   */
  ownsInput?: boolean;
}

/** Consecutive plaintext of the file and, when asked, how often `countByte` occurs in it. */
export interface PlainBatch {
  bytes: Buffer;
  count: number;
  /**
   * The consumer is done with `bytes` (and every view of them): their buffer takes a later batch,
   * so a load reuses a few warm buffers instead of mapping fresh memory for every batch. Optional;
   * a batch never released is simply collected.
   */
  release(): void;
}

const DEFAULT_BATCH_CHUNKS = 64;

/** Plaintext batches of the age file `source` for one of `identities`, in order. */
export function decryptBatches(
  source: ByteSource,
  identities: Identities,
  options: ParallelDecryptOptions,
): AsyncGenerator<PlainBatch> {
  const list = typeof identities === "string" ? [identities] : identities;
  return decryptBatchesWith(source, (header) => openHeader(header, list), options);
}

/** Opens the payload of `source` (whose file key `openKey` recovers) in batches on worker threads. */
export async function* decryptBatchesWith(
  source: ByteSource,
  openKey: (header: AgeHeader) => Promise<Uint8Array>,
  options: ParallelDecryptOptions,
): AsyncGenerator<PlainBatch> {
  const { workers } = options;
  const batchChunks = options.batchChunks ?? DEFAULT_BATCH_CHUNKS;
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError("decrypt: workers");
  if (!Number.isInteger(batchChunks) || batchChunks < 1) throw new RangeError("decrypt: batchChunks");
  const byte = options.countByte ?? -1;
  const batchBytes = batchChunks * SEALED_CHUNK_BYTES;
  const depth = 2 * workers;
  const input = iterate(source);
  let pool: DecryptPool | undefined;
  try {
    const { key, queue, fill } = await openPayload(input, openKey);
    /** Batches sent and not yet released, in file order; each settles to its plaintext or error. */
    const pending: Promise<OpenedBatch>[] = [];
    /** Full-size buffers the consumer has released. */
    const spare: ArrayBuffer[] = [];
    let nextChunk = 0;
    const send = (length: number, chunks: number, final: boolean): void => {
      // A buffer of its own (transferred to a worker and back): a released one when it fits.
      const buffer =
        (length === batchBytes ? spare.pop() : undefined) ?? Buffer.allocUnsafeSlow(length).buffer;
      const first = nextChunk;
      nextChunk += chunks;
      // A file that fits in one batch is opened here: starting a worker would cost more.
      const here = pool === undefined && final;
      // The sealed bytes move to the worker that opens them, or are copied into the batch here.
      const parts = !here && options.ownsInput ? movedViews(queue.takeViews(length)) : undefined;
      const sealed = Buffer.from(buffer, 0, length);
      if (!parts) {
        const view = queue.take(length, sealed);
        if (view.buffer !== sealed.buffer) sealed.set(view);
      }
      let opened: Promise<OpenedBatch>;
      if (here) {
        opened = Promise.resolve().then(() =>
          openBatchHere(createDecipheriv, key, sealed, first, true, byte),
        );
      } else {
        pool ??= new DecryptPool(key, workers);
        opened = pool.open(buffer, length, first, final, byte, parts);
      }
      opened.catch(() => undefined); // awaited in order below; this only marks it handled meanwhile
      pending.push(opened);
    };
    let ended = false;
    for (;;) {
      while (!ended && pending.length < depth) {
        try {
          // A full batch with at least one more byte after it holds no final chunk.
          if (await fill(batchBytes + 1)) {
            send(batchBytes, batchChunks, false);
            continue;
          }
          ended = true;
          const rest = queue.length;
          const full = rest <= SEALED_CHUNK_BYTES ? 0 : Math.ceil(rest / SEALED_CHUNK_BYTES) - 1;
          checkFinalChunk(rest - full * SEALED_CHUNK_BYTES, nextChunk + full === 0);
          send(rest, full + 1, true);
        } catch (e) {
          // A failing input or final chunk fails where the serial path would: after every batch
          // before it is released, or after the first of them that does not authenticate.
          ended = true;
          const refused = Promise.reject(e);
          refused.catch(() => undefined);
          pending.push(refused);
        }
      }
      const next = pending.shift();
      if (next === undefined) return;
      const { plaintext, count } = await next.catch((e: unknown) => {
        throw e instanceof BatchAuthenticationError
          ? new AgeDecryptError("payload: chunk authentication failed", { cause: e })
          : e;
      });
      let released = false;
      const release = () => {
        if (released || plaintext.buffer.byteLength !== batchBytes) return;
        released = true;
        spare.push(plaintext.buffer as ArrayBuffer);
      };
      yield { bytes: plaintext, count, release };
    }
  } finally {
    await pool?.close();
    await input.return?.();
  }
}

/**
 * A batch's sealed bytes as buffers a worker may take: a whole piece as it is, any other view (a
 * piece's bytes shared with the next batch, a piece that is part of a larger buffer) copied.
 */
function movedViews(views: { view: Uint8Array; whole: boolean }[]): MovedBytes[] {
  return views.map(({ view, whole }) => {
    // new Uint8Array(view) copies; a Buffer's slice() would be a view of the same memory.
    const own = whole ? view : new Uint8Array(view);
    return { buffer: own.buffer as ArrayBuffer, offset: own.byteOffset, length: own.length };
  });
}

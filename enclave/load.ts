/**
 * One granted ciphertext into its dataset's table, decrypted on worker threads
 * (protocol/age/parallel-decrypt.ts) while DuckDB loads the segments already decrypted.
 *
 * What binds the bytes to the grant (docs/PROTOCOL.md, "What binds an upload to its grant"):
 * - a grant with a file key (what the SDK sends: the owner encrypted to its own recipient): the
 *   header MAC under that key and age's STREAM tags. No other file opens under the key, so the
 *   ciphertext is not hashed again here;
 * - a grant without one (a file encrypted to this enclave's recipient, which anyone can do): the
 *   SHA-256 of the ciphertext, computed as it streams and compared with the grant's at its end,
 *   before the final batch is released.
 * Either way a swapped file fails the load, which ingestDataset rolls back: a refused load leaves
 * no table and no partial rows. The grant's file key is zeroed when the load ends, loaded or
 * refused.
 */
import { createHash } from "node:crypto";
import { isCleanroomError } from "../attestation/errors.js";
import { decryptBatchesWithFileKey } from "../protocol/age/file-key-decrypt.js";
import type { PlainBatch } from "../protocol/age/parallel-decrypt.js";
import { encryptBytes } from "../protocol/age/stream-node.js";
import type { Dataset } from "../protocol/contract/types.js";
import { DigestMismatchError } from "./errors.js";
import type { Grant } from "./grants.js";
import type { EnclaveKeyring } from "./keys.js";
import type { CsvPiece } from "./sql/csv-segments.js";
import type { SqlEngine } from "./sql/engine.js";
import { IngestFailedError } from "./sql/errors.js";
import { type IngestOptions, ingestDataset, type QualityReport } from "./sql/ingest.js";

const QUOTE = 0x22;

/**
 * Decrypt workers beside DuckDB's threads: opening chunks costs a small fraction of parsing the
 * same bytes (about 2.6 GB/s per core against DuckDB's few hundred MB/s), so one worker per 8
 * DuckDB threads keeps the parser fed without taking its cores.
 */
export function decryptWorkers(threads: number): number {
  return Math.max(1, Math.ceil(threads / 8));
}

export async function loadGranted(input: {
  engine: SqlEngine;
  keys: EnclaveKeyring;
  dataset: Dataset;
  grant: Grant;
  ciphertext: AsyncIterable<Uint8Array>;
  /**
   * The ciphertext's chunks are this load's alone (a request body's): whole ones move to the
   * decrypt workers instead of being copied (protocol/age/parallel-decrypt.ts `ownsInput`).
   */
  ownsInput?: boolean;
  /** How the rows join the dataset, progress and commit hooks (enclave/sql/ingest.ts). */
  options?: Pick<IngestOptions, "into" | "onRows" | "onCommit">;
}): Promise<QualityReport> {
  const { grant } = input;
  async function* received(): AsyncGenerator<Uint8Array> {
    try {
      yield* input.ciphertext;
    } catch (e) {
      throw new IngestFailedError("ingest: ciphertext stream failed", { cause: e });
    }
  }
  async function* hashed(): AsyncGenerator<Uint8Array> {
    const hash = createHash("sha256");
    for await (const piece of received()) {
      hash.update(piece);
      yield piece;
    }
    if (hash.digest("hex") !== grant.ciphertextDigest) {
      throw new DigestMismatchError("ciphertext digest differs from the grant");
    }
  }
  const options = {
    workers: decryptWorkers(input.engine.threads),
    ownsInput: input.ownsInput === true,
    // The workers count CSV quotes, so cutting segments on the main thread needs no rescan.
    ...(input.dataset.format === "csv" ? { countByte: QUOTE } : {}),
  };
  /** How the decrypted stream failed, if it did: in file order, whatever was read ahead. */
  let streamError: unknown;
  async function* plaintext(batches: AsyncIterable<PlainBatch>): AsyncGenerator<CsvPiece> {
    try {
      for await (const b of batches) {
        yield options.countByte === undefined
          ? { bytes: b.bytes, release: b.release }
          : { bytes: b.bytes, quotes: b.count, release: b.release };
      }
    } catch (e) {
      streamError = e;
      throw e;
    }
  }
  try {
    const batches = grant.fileKey
      ? decryptBatchesWithFileKey(received(), grant.fileKey, options)
      : input.keys.decryptAge(hashed(), options);
    return await ingestDataset(input.engine, input.dataset, plaintext(batches), {
      ...input.options,
      ciphertextDigest: grant.ciphertextDigest,
    });
  } catch (e) {
    // The stream's own failure (a swapped, truncated or tampered file, the transport) explains a
    // load failure better than its echo, or than facts about rows read before it.
    const cause = streamError ?? e;
    throw isCleanroomError(cause) ? cause : new IngestFailedError("ingest: load failed", { cause });
  } finally {
    grant.fileKey?.fill(0);
  }
}

/** The quality report's plaintext is padded to a multiple of this, so its length tells little. */
export const QUALITY_BLOCK_BYTES = 4096;

/**
 * The quality report as an age file to the owner, and its SHA-256 (hex) for the signed answer.
 * The JSON is padded with trailing spaces (still the same JSON) so the ciphertext's length, which
 * the host sees, does not follow the digits of the counts in it.
 */
export async function sealQualityReport(
  report: QualityReport,
  recipient: string,
): Promise<{ ciphertext: Uint8Array; digest: string }> {
  const json = new TextEncoder().encode(JSON.stringify(report));
  const padded = new Uint8Array(Math.ceil((json.length + 1) / QUALITY_BLOCK_BYTES) * QUALITY_BLOCK_BYTES);
  padded.fill(0x20).set(json);
  const ciphertext = await encryptBytes(padded, [recipient]);
  return { ciphertext, digest: createHash("sha256").update(ciphertext).digest("hex") };
}

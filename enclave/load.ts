/**
 * One granted ciphertext into its dataset's table. The ciphertext is hashed as it streams
 * through decryption; when the stream ends the digest is compared with the grant's before the
 * last plaintext chunk is released, so a swapped file fails the load, which ingestDataset then
 * rolls back: a refused load leaves no table and no partial rows.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { isCleanroomError } from "../attestation/errors.js";
import { decryptChunksWithFileKey } from "../protocol/age/file-key-decrypt.js";
import type { Dataset } from "../protocol/contract/types.js";
import { DigestMismatchError } from "./errors.js";
import type { Grant } from "./grants.js";
import type { EnclaveKeyring } from "./keys.js";
import type { SqlEngine } from "./sql/engine.js";
import { IngestFailedError } from "./sql/errors.js";
import { ingestDataset, type QualityReport } from "./sql/ingest.js";

export async function loadGranted(input: {
  engine: SqlEngine;
  keys: EnclaveKeyring;
  dataset: Dataset;
  grant: Grant;
  ciphertext: AsyncIterable<Uint8Array>;
}): Promise<QualityReport> {
  let sourceError: unknown;
  const { grant } = input;
  async function* hashed(): AsyncGenerator<Uint8Array> {
    const hash = createHash("sha256");
    try {
      for await (const piece of input.ciphertext) {
        hash.update(piece);
        yield piece;
      }
    } catch (e) {
      sourceError = new IngestFailedError("ingest: ciphertext stream failed", { cause: e });
      throw sourceError;
    }
    if (hash.digest("hex") !== grant.ciphertextDigest) {
      sourceError = new DigestMismatchError("ciphertext digest differs from the grant");
      throw sourceError;
    }
  }
  const plaintext = grant.fileKey
    ? decryptChunksWithFileKey(hashed(), grant.fileKey)
    : input.keys.decryptAge(hashed());
  try {
    return await ingestDataset(input.engine, input.dataset, Readable.from(plaintext));
  } catch (e) {
    // The source's own failure (swap, transport) explains a load failure better than its echo.
    if (sourceError) throw sourceError;
    throw isCleanroomError(e) ? e : new IngestFailedError("ingest: load failed", { cause: e });
  }
}

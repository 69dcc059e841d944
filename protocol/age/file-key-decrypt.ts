/**
 * Decryption with a known file key instead of an identity: for a file a party encrypted to its
 * own recipient and whose file key it then granted to the enclave. The header MAC is still
 * checked with that key, so a key for one file cannot open another file's header.
 */
import { AgeDecryptError } from "./errors.js";
import { FILE_KEY_BYTES, verifyHeaderMac } from "./file-key.js";
import { decryptBatchesWith, type ParallelDecryptOptions, type PlainBatch } from "./parallel-decrypt.js";
import type { ByteSource } from "./stream-node.js";

/** Plaintext batches of the age file `source` under `fileKey` (16 bytes), opened on worker threads. */
export function decryptBatchesWithFileKey(
  source: ByteSource,
  fileKey: Uint8Array,
  options: ParallelDecryptOptions,
): AsyncGenerator<PlainBatch> {
  if (fileKey.length !== FILE_KEY_BYTES) throw new AgeDecryptError("file key: wrong length");
  const key = fileKey.slice();
  return decryptBatchesWith(
    source,
    async (header) => {
      if (!(await verifyHeaderMac(key, header.macInput, header.mac))) {
        throw new AgeDecryptError("header: MAC mismatch");
      }
      return key;
    },
    options,
  );
}

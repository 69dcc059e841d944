/**
 * Decryption with a known file key instead of an identity: for a file a party encrypted to its
 * own recipient and whose file key it then granted to the enclave. The header MAC is still
 * checked with that key, so a key for one file cannot open another file's header.
 */
import { AgeDecryptError } from "./errors.js";
import { FILE_KEY_BYTES, verifyHeaderMac } from "./file-key.js";
import { type ByteSource, decryptChunksWith } from "./stream-node.js";

/** Plaintext chunks of the age file `source` under `fileKey` (16 bytes), each released once it authenticates. */
export function decryptChunksWithFileKey(source: ByteSource, fileKey: Uint8Array): AsyncGenerator<Buffer> {
  if (fileKey.length !== FILE_KEY_BYTES) throw new AgeDecryptError("file key: wrong length");
  const key = fileKey.slice();
  return decryptChunksWith(source, async (header) => {
    if (!(await verifyHeaderMac(key, header.macInput, header.mac))) {
      throw new AgeDecryptError("header: MAC mismatch");
    }
    return key;
  });
}

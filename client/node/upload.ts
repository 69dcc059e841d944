/**
 * Upload (Node): age-encrypt a file to the party's OWN recipient, so the same ciphertext can be
 * granted to any later (restarted) enclave with its file key, hash the ciphertext, and PUT it
 * into the host's content-addressed store under that digest. The digest names the URL, so the
 * ciphertext is written to a temporary file first (mode 0600) and streamed from there.
 * The age header is kept in the state directory: the file key can be unwrapped from it later.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { stat, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { toBase64 } from "../../attestation/bytes.js";
import { AgeFormatError } from "../../protocol/age/errors.js";
import { formatHeader } from "../../protocol/age/header.js";
import { HeaderReader } from "../../protocol/age/header-reader.js";
import { encryptStream } from "../../protocol/age/stream-node.js";
import type { CleanroomClient } from "../sdk/client.js";

export interface UploadProgress {
  phase: "encrypt" | "upload";
  bytes: number;
  total: number;
}

export interface UploadOptions {
  onProgress?: (p: UploadProgress) => void;
  /** Keep the ciphertext at this path (default: a temporary file, removed afterwards). */
  ciphertextPath?: string;
}

export interface UploadResult {
  /** SHA-256 (hex) of the age file: the blob's name and the grant's ciphertextDigest. */
  digest: string;
  size: number;
  /** True when the host already held this blob. */
  skipped: boolean;
}

function counter(
  phase: UploadProgress["phase"],
  total: number,
  report?: (p: UploadProgress) => void,
): Transform {
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      report?.({ phase, bytes, total });
      done(null, chunk);
    },
  });
}

/** Encrypts `path` to `recipient` into `out`; returns the ciphertext digest, size and header bytes. */
export async function encryptFileForUpload(
  path: string,
  recipient: string,
  out: string,
  onProgress?: (p: UploadProgress) => void,
): Promise<{ digest: string; size: number; header: Uint8Array }> {
  const total = (await stat(path)).size;
  const hash = createHash("sha256");
  const reader = new HeaderReader();
  let header: Uint8Array | undefined;
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      if (!header) {
        const framed = reader.push(chunk);
        if (framed) header = formatHeader(framed.header.macInput, framed.header.mac);
      }
      done(null, chunk);
    },
  });
  await pipeline(
    encryptStream(createReadStream(path).pipe(counter("encrypt", total, onProgress)), [recipient]),
    tap,
    createWriteStream(out, { mode: 0o600 }),
  );
  if (!header) throw new AgeFormatError("header: missing");
  return { digest: hash.digest("hex"), size, header };
}

export async function uploadFile(
  client: CleanroomClient,
  path: string,
  o: UploadOptions = {},
): Promise<UploadResult> {
  // Refuse before any byte leaves when the enclave's evidence does not verify.
  await client.attestation();
  const out = o.ciphertextPath ?? join(tmpdir(), `cleanroom-upload-${randomBytes(8).toString("hex")}.age`);
  try {
    const { digest, size, header } = await encryptFileForUpload(
      path,
      client.keys.ageRecipient,
      out,
      o.onProgress,
    );
    await client.state.saveUpload({ digest, header: toBase64(header), size });
    if (await client.host.hasBlob(digest)) return { digest, size, skipped: true };
    const body = Readable.toWeb(createReadStream(out).pipe(counter("upload", size, o.onProgress)));
    await client.host.putBlob(digest, body as ReadableStream<Uint8Array>, size);
    return { digest, size, skipped: false };
  } finally {
    if (!o.ciphertextPath) await unlink(out).catch(() => undefined);
  }
}

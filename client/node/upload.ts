/**
 * Upload (Node) in constant memory, resumable. The file is age-encrypted to the party's OWN
 * recipient, so the same ciphertext can be granted to any later (restarted) enclave with its file
 * key. The blob's name is the SHA-256 of the ciphertext, known only after a whole pass, so the file
 * is encrypted twice under one header and payload nonce (encryptChunksSealed gives the same bytes
 * again): a first pass hashes the ciphertext, a second streams it to the host. Nothing is written
 * to disk but two small records in the state directory: the age header (the file key can be
 * unwrapped from it later, for the grant) and, per source path, what a resumption needs (the
 * source's size and mtime, the payload nonce, the SHA-256 of every block). The same unchanged
 * file uploaded again is therefore the same blob, which the host already holds (`skipped`).
 *
 * Resumption (after Ctrl-C, a dropped connection or a host restart) asks the host how many bytes
 * it holds and re-encrypts from the chunk holding the first missing block. Every block is checked
 * against its first-pass hash before any of its bytes leave: if the file changed, the same key
 * and nonce would encrypt other plaintext (a repeated keystream), so the upload stops instead.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { resolve } from "node:path";
import { Readable } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { fromBase64, toBase64 } from "../../attestation/bytes.js";
import { CleanroomError } from "../../attestation/errors.js";
import { sealHeader } from "../../protocol/age/envelope.js";
import { PAYLOAD_NONCE_BYTES } from "../../protocol/age/file-key.js";
import {
  CHUNK_BYTES,
  encryptChunksSealed,
  SEALED_CHUNK_BYTES,
  type SealedPayload,
} from "../../protocol/age/stream-node.js";
import { recoverFileKey } from "../sdk/age.js";
import type { CleanroomClient } from "../sdk/client.js";
import { HostError, HostResponseError, IoError } from "../sdk/errors.js";
import type { UploadStatus } from "../sdk/http.js";

export interface UploadProgress {
  /** "encrypt": the first pass over the plaintext; "upload": ciphertext bytes the host holds. */
  phase: "encrypt" | "upload";
  bytes: number;
  total: number;
  /** In "upload": the bytes the host already held when this upload (or its resumption) began. */
  resumedFrom?: number;
}

export interface UploadOptions {
  onProgress?: (p: UploadProgress) => void;
  /** Also write the age file here during the first pass. */
  ciphertextPath?: string;
  /** Resumptions after a dropped connection or a host error before giving up. Default 8. */
  retries?: number;
  /** First delay between resumptions, doubling up to 30 s. Default 1 s. */
  retryDelayMs?: number;
}

export interface UploadResult {
  /** SHA-256 (hex) of the age file: the blob's name and the grant's ciphertextDigest. */
  digest: string;
  size: number;
  /** True when the host already held the whole blob. */
  skipped: boolean;
  /** Bytes the host held before this call sent any (an interrupted upload resumed). */
  resumedFrom: number;
}

/** The file changed after it was encrypted: the upload stops before sending other plaintext. */
export class UploadSourceChangedError extends CleanroomError {
  static override code = "ERR_UPLOAD_SOURCE_CHANGED";
}

/** Ciphertext blocks whose SHA-256 the first pass records (the check before sending). */
export const BLOCK_BYTES = 8 * 1024 * 1024;
/** Pieces handed to the HTTP body, so progress moves and no socket write is huge. */
const SEND_BYTES = 1024 * 1024;

/** What a resumption (or a repeated upload of the unchanged file) needs, per source path. */
interface PendingUpload {
  path: string;
  size: number;
  mtimeMs: number;
  digest: string;
  /** Ciphertext length. */
  length: number;
  /** base64 */
  header: string;
  /** base64 */
  payloadNonce: string;
  blockBytes: number;
  blocks: string[];
}

function pendingKey(client: CleanroomClient, path: string): string {
  const id = createHash("sha256").update(path).digest("hex").slice(0, 32);
  return `${client.state.prefix}/pending-uploads/${id}.json`;
}

async function readPending(client: CleanroomClient, path: string): Promise<PendingUpload | undefined> {
  const text = await client.state.store.get(pendingKey(client, path));
  if (!text) return undefined;
  try {
    const p = JSON.parse(text) as Partial<PendingUpload> | null;
    if (
      p?.path !== path ||
      typeof p.digest !== "string" ||
      !Array.isArray(p.blocks) ||
      p.blockBytes !== BLOCK_BYTES ||
      p.blocks.length !== Math.ceil((p.length ?? 0) / BLOCK_BYTES)
    ) {
      return undefined;
    }
    return p as PendingUpload;
  } catch {
    return undefined;
  }
}

/** The state store can only overwrite: an empty object marks "nothing pending". */
function clearPending(client: CleanroomClient, path: string): Promise<void> {
  return client.state.store.set(pendingKey(client, path), "{}\n");
}

/** Hashes the ciphertext as it passes, block by block, and in whole. */
class BlockHasher {
  readonly blocks: string[] = [];
  readonly #whole = createHash("sha256");
  #block = createHash("sha256");
  #inBlock = 0;
  length = 0;

  push(piece: Uint8Array): void {
    this.#whole.update(piece);
    this.length += piece.length;
    let p = piece;
    while (p.length > 0) {
      const take = Math.min(p.length, BLOCK_BYTES - this.#inBlock);
      this.#block.update(p.subarray(0, take));
      this.#inBlock += take;
      p = p.subarray(take);
      if (this.#inBlock === BLOCK_BYTES) this.#next();
    }
  }

  #next(): void {
    this.blocks.push(this.#block.digest("hex"));
    this.#block = createHash("sha256");
    this.#inBlock = 0;
  }

  finish(): string {
    if (this.#inBlock > 0) this.#next();
    return this.#whole.digest("hex");
  }
}

/** First pass: a fresh header and nonce, the ciphertext hashed (and optionally kept). */
async function encryptOnce(
  client: CleanroomClient,
  path: string,
  source: { size: number; mtimeMs: number },
  o: UploadOptions,
): Promise<PendingUpload> {
  const { header, fileKey } = await sealHeader([client.keys.ageRecipient]);
  const payloadNonce = crypto.getRandomValues(new Uint8Array(PAYLOAD_NONCE_BYTES));
  const hasher = new BlockHasher();
  let copy: WriteStream | undefined;
  let read = 0;
  async function* plaintext(): AsyncGenerator<Buffer> {
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
      read += (chunk as Buffer).length;
      o.onProgress?.({ phase: "encrypt", bytes: read, total: source.size });
      yield chunk as Buffer;
    }
  }
  try {
    if (o.ciphertextPath) copy = createWriteStream(o.ciphertextPath, { mode: 0o600 });
    for await (const piece of encryptChunksSealed(plaintext(), { header, fileKey, payloadNonce })) {
      hasher.push(piece);
      if (copy && !copy.write(piece)) await new Promise<void>((r) => copy!.once("drain", () => r()));
    }
    if (copy) {
      copy.end();
      await finished(copy);
    }
  } finally {
    fileKey.fill(0);
    copy?.destroy();
  }
  if (read !== source.size) throw new UploadSourceChangedError(`upload: ${path} changed while it was read`);
  return {
    path,
    size: source.size,
    mtimeMs: source.mtimeMs,
    digest: hasher.finish(),
    length: hasher.length,
    header: toBase64(header),
    payloadNonce: toBase64(payloadNonce),
    blockBytes: BLOCK_BYTES,
    blocks: hasher.blocks,
  };
}

/**
 * The ciphertext from byte `from` on, re-encrypted from the chunk holding the start of `from`'s
 * block; each block is released only once it hashes as in the first pass.
 */
async function* ciphertextFrom(
  plan: PendingUpload,
  sealed: SealedPayload,
  from: number,
): AsyncGenerator<Buffer> {
  const prefix = sealed.header.length + PAYLOAD_NONCE_BYTES;
  let block = Math.floor(from / BLOCK_BYTES);
  const blockStart = block * BLOCK_BYTES;
  const chunk = blockStart < prefix ? 0 : Math.floor((blockStart - prefix) / SEALED_CHUNK_BYTES);
  let pos = chunk === 0 ? 0 : prefix + chunk * SEALED_CHUNK_BYTES;
  const plaintext = createReadStream(plan.path, { start: chunk * CHUNK_BYTES, highWaterMark: 1024 * 1024 });
  let buffer = Buffer.allocUnsafe(Math.min(BLOCK_BYTES, plan.length - blockStart));
  let filled = 0;
  const changed = () =>
    new UploadSourceChangedError(
      `upload: ${plan.path} changed since it was encrypted; upload it again (a new encryption)`,
    );
  async function* release(): AsyncGenerator<Buffer> {
    if (createHash("sha256").update(buffer).digest("hex") !== plan.blocks[block]) throw changed();
    const start = Math.max(0, from - block * BLOCK_BYTES);
    for (let i = start; i < buffer.length; i += SEND_BYTES) {
      yield buffer.subarray(i, Math.min(buffer.length, i + SEND_BYTES));
    }
    block++;
    const left = plan.length - block * BLOCK_BYTES;
    // A fresh buffer each block: the HTTP client may still hold the previous one's pieces.
    buffer = Buffer.allocUnsafe(Math.max(0, Math.min(BLOCK_BYTES, left)));
    filled = 0;
  }
  for await (const piece of encryptChunksSealed(plaintext, sealed, chunk)) {
    let p = piece;
    if (pos < blockStart) {
      const skip = Math.min(p.length, blockStart - pos);
      p = p.subarray(skip);
      pos += skip;
    }
    while (p.length > 0) {
      if (buffer.length === 0) throw changed(); // more ciphertext than the first pass made
      const take = Math.min(p.length, buffer.length - filled);
      buffer.set(p.subarray(0, take), filled);
      filled += take;
      pos += take;
      p = p.subarray(take);
      if (filled === buffer.length) yield* release();
    }
  }
  if (filled !== buffer.length || block !== plan.blocks.length) throw changed();
}

/**
 * PATCH /blobs/{sha256}: `pieces` (the blob from `offset` on) appended to the host's copy. Over
 * node:http(s), whose request stream waits for the socket to drain: fetch (undici) keeps every
 * piece of a streamed request body until the request ends, which would hold the whole file.
 */
async function appendBlob(
  baseUrl: string,
  digest: string,
  offset: number,
  length: number,
  pieces: AsyncIterable<Buffer>,
): Promise<UploadStatus> {
  const url = new URL(`${baseUrl}/blobs/${digest}?offset=${offset}&length=${length}`);
  const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, {
    method: "PATCH",
    headers: { "content-type": "application/octet-stream", "content-length": length - offset },
  });
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    req.once("response", resolve);
    // Kept for the request's life: a reset can be reported more than once.
    req.on("error", reject);
  });
  answered.catch(() => undefined); // awaited below; a send failure is reported first
  let sendError: unknown;
  const sent = pipeline(Readable.from(pieces), req).catch((e: unknown) => {
    sendError = e;
  });
  // The host may answer before it has read everything (a stale offset, a full store): the answer
  // says why, and ends the sending once it is read (the host drops what still arrives meanwhile).
  const early = await Promise.race([
    sent.then(() => false),
    answered.then(
      () => true,
      () => false,
    ),
  ]);
  if (!early && sendError !== undefined) {
    const late = await Promise.race([answered, sleep(200).then(() => undefined)]).catch(() => undefined);
    if (!late)
      throw new IoError("upload interrupted: host unreachable or connection lost", { cause: sendError });
  }
  let res: IncomingMessage;
  const answer: Buffer[] = [];
  try {
    try {
      res = await answered;
    } catch (e) {
      throw new IoError("upload interrupted: host unreachable or connection lost", { cause: e });
    }
    try {
      for await (const piece of res) answer.push(piece as Buffer);
    } catch (e) {
      throw new IoError("upload interrupted: the host's answer was cut", { cause: e });
    }
  } finally {
    if (!req.writableFinished) req.destroy();
    await sent;
  }
  const received = Buffer.concat(answer);
  // A connection lost right after the status line can end the answer early without an error:
  // shorter than announced, it is a cut answer, not the host's word.
  const announced = Number(res.headers["content-length"]);
  if (Number.isSafeInteger(announced) && received.length < announced) {
    throw new IoError("upload interrupted: the host's answer was cut");
  }
  const text = received.toString("utf8");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const status = res.statusCode ?? 0;
  if (status >= 200 && status < 300) {
    const s = body as Partial<UploadStatus> | undefined;
    if (typeof s?.offset !== "number" || typeof s.complete !== "boolean") {
      throw new HostResponseError("upload answer is not an upload status");
    }
    return s as UploadStatus;
  }
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code =
    typeof error?.code === "string" && /^ERR_[A-Z0-9_]{1,64}$/.test(error.code) ? error.code : undefined;
  const message = typeof error?.message === "string" ? error.message.slice(0, 200) : undefined;
  throw new HostError(status, code, message);
}

/** Worth resuming: the connection failed, the host is busy or failing, or our offset was stale. */
function resumable(e: unknown): boolean {
  if (e instanceof IoError) return true;
  if (!(e instanceof HostError)) return false;
  if (e.serverCode === "ERR_UPLOAD_OFFSET" || e.serverCode === "ERR_UPLOAD_CONFLICT") return true;
  // Space comes back only when the operator frees it: a later run resumes from the host's offset.
  if (e.serverCode === "ERR_STORE_FULL") return false;
  return e.status === 429 || e.status >= 500;
}

export async function uploadFile(
  client: CleanroomClient,
  file: string,
  o: UploadOptions = {},
): Promise<UploadResult> {
  // Refuse before any byte leaves when the enclave's evidence does not verify.
  await client.attestation();
  const path = resolve(file);
  let source: { size: number; mtimeMs: number };
  try {
    source = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    throw new IoError(`upload: cannot read ${path} (${code})`, { cause: e });
  }
  let plan = await readPending(client, path);
  if (plan && (plan.size !== source.size || plan.mtimeMs !== source.mtimeMs || o.ciphertextPath)) {
    plan = undefined;
  }
  if (!plan) {
    plan = await encryptOnce(client, path, source, o);
    // The header first: the grant needs it even if the upload is finished by another run.
    await client.state.saveUpload({ digest: plan.digest, header: plan.header, size: plan.length });
    await client.state.store.set(pendingKey(client, path), `${JSON.stringify(plan)}\n`);
  }
  const header = fromBase64(plan.header);
  const sealed: SealedPayload = {
    header,
    fileKey: await recoverFileKey(header, client.keys.ageIdentity),
    payloadNonce: fromBase64(plan.payloadNonce),
  };
  const retries = o.retries ?? 8;
  let delay = o.retryDelayMs ?? 1000;
  let resumedFrom: number | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      let sourceError: unknown;
      try {
        const status = await client.host.uploadStatus(plan.digest);
        resumedFrom ??= status.offset;
        if (status.complete) {
          return {
            digest: plan.digest,
            size: plan.length,
            skipped: resumedFrom === plan.length,
            resumedFrom,
          };
        }
        let held = status.offset;
        const report = () =>
          o.onProgress?.({ phase: "upload", bytes: held, total: plan.length, resumedFrom: status.offset });
        report();
        const pieces = (async function* () {
          const source = ciphertextFrom(plan, sealed, status.offset);
          try {
            for (;;) {
              let next: IteratorResult<Buffer>;
              try {
                next = await source.next();
              } catch (e) {
                sourceError = e;
                throw e;
              }
              if (next.done) return;
              // A lost connection is thrown in here by the request's pipeline: not the source's
              // failure, so the upload resumes instead of stopping.
              yield next.value;
              held += next.value.length;
              report();
            }
          } finally {
            await source.return(undefined);
          }
        })();
        const after = await appendBlob(client.host.baseUrl, plan.digest, status.offset, plan.length, pieces);
        if (after.complete) {
          return { digest: plan.digest, size: plan.length, skipped: false, resumedFrom };
        }
        attempt = -1; // the host kept what it received: go on from there
      } catch (e) {
        if (sourceError !== undefined) {
          // Never again under this key and nonce: the next run encrypts afresh.
          if (sourceError instanceof UploadSourceChangedError) await clearPending(client, path);
          throw sourceError;
        }
        if (e instanceof HostError && e.serverCode === "ERR_DIGEST_MISMATCH") {
          await clearPending(client, path);
          throw new UploadSourceChangedError(
            `upload: the host refused ${path}'s ciphertext (digest mismatch); upload it again`,
            { cause: e },
          );
        }
        if (!resumable(e) || attempt >= retries) throw e;
        await sleep(delay);
        delay = Math.min(delay * 2, 30_000);
      }
    }
  } finally {
    sealed.fileKey.fill(0);
  }
}

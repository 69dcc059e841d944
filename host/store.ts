/**
 * The host's disk: a content-addressed store of age ciphertext blobs, the per-party result
 * ciphertexts of each query run, and a copy of the enclave's audit log. Everything kept here is
 * ciphertext or signed by the enclave; the host trusts none of it and only keeps it available.
 *
 * Layout under the store directory:
 *   blobs/<sha256 hex>            age files, named by the SHA-256 of their bytes
 *   results/<id>/<party>.age      one age file per recipient of a query run
 *   results/<id>/meta.json        {response, recipients}: the enclave's signed answer
 *   audit.jsonl                   one {"seq","jws"} line per audit entry, append-only
 *   guard/<sha256 hex>            sealed differencing-guard histories (host/guard-history.ts)
 *   uploads/<sha256>.part         a resumable upload's bytes so far (renamed into blobs/ when whole)
 *   uploads/<sha256>.length       its declared length, in decimal
 *   tmp/                          in-flight writes (same filesystem, so rename is atomic)
 */
import { createHash, type Hash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import {
  appendFile,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  truncate,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import {
  AuditContinuityError,
  DigestMismatchError,
  EnclaveProtocolError,
  NotFoundError,
  StoreFullError,
  TooLargeError,
  UploadConflictError,
  UploadOffsetError,
} from "./errors.js";
import { GuardHistoryStore } from "./guard-history.js";
import { assertBlobId, assertPartyId, assertResultId } from "./ids.js";

/** 64 GiB: the default ceiling for one uploaded age file. */
export const DEFAULT_MAX_BLOB_BYTES = 64 * 1024 ** 3;

/** Resumable uploads untouched for this long are removed when the store opens: 7 days. */
export const DEFAULT_PARTIAL_TTL_MS = 7 * 24 * 3600 * 1000;

/** What the host holds of a resumable upload. */
export interface UploadStatus {
  /** Bytes held: where the next append starts (the blob's size once it is complete). */
  offset: number;
  /** The length its first append declared; null before any append. */
  length: number | null;
  complete: boolean;
}

export interface StoredFile {
  stream: Readable;
  size: number;
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function tmpName(dir: string): string {
  return join(dir, `${randomBytes(16).toString("hex")}.part`);
}

/**
 * Write `source` to `path` (opened with `flags`, mode 0600) while hashing into `hash`, failing with
 * TooLargeError(`tooLarge`) past `limit` bytes. The source is paused, not destroyed, on failure,
 * so the caller can still answer the client on the same connection. A source that fails rejects,
 * unless `keepOnSourceError`: then the write ends where it stopped and `sourceError` says so.
 */
async function writeHashing(
  source: Readable,
  path: string,
  flags: "wx" | "a",
  hash: Hash,
  limit: number,
  tooLarge: string,
  keepOnSourceError: boolean,
): Promise<{ written: number; sourceError?: unknown }> {
  const sink = createWriteStream(path, { flags, mode: 0o600 });
  let written = 0;
  let sourceError: unknown;
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (e: unknown) => {
        source.off("data", onData);
        source.pause();
        reject(e);
      };
      const onData = (chunk: Buffer) => {
        if (written + chunk.length > limit) return fail(new TooLargeError(tooLarge));
        written += chunk.length;
        hash.update(chunk);
        if (!sink.write(chunk)) source.pause();
      };
      const keep = (e: unknown) => {
        sourceError = e;
        source.off("data", onData);
        sink.end();
      };
      sink.on("drain", () => source.resume());
      sink.on("error", fail);
      source.on("data", onData);
      finished(source, { writable: false }).then(() => sink.end(), keepOnSourceError ? keep : fail);
      sink.on("finish", resolve);
    });
  } finally {
    if (!sink.closed) {
      sink.destroy();
      await finished(sink).catch(() => undefined);
    }
  }
  return sourceError === undefined ? { written } : { written, sourceError };
}

/** A write refused for want of space or quota, as the store's own error; any other error as it is. */
function storeFailure(e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT" ? new StoreFullError({ cause: e }) : e;
}

/** Copy `source` into `path` (created exclusively) while hashing, at most `maxBytes`; its SHA-256. */
async function copyHashing(source: Readable, path: string, maxBytes: number): Promise<string> {
  const hash = createHash("sha256");
  await writeHashing(source, path, "wx", hash, maxBytes, "blob too large", false);
  return hash.digest("hex");
}

/**
 * Append `source` to `path` while hashing, at most `limit` bytes. A source that fails (the client
 * went away) ends the append where it stopped: what arrived is kept and counted, so the upload
 * resumes there; `sourceError` says it stopped early.
 */
const appendHashing = (source: Readable, path: string, hash: Hash, limit: number) =>
  writeHashing(source, path, "a", hash, limit, "upload longer than its declared length", true);

async function sizeOrNull(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/** SHA-256 state over the bytes of `path` (empty when absent), to continue an upload. */
async function hashOf(path: string): Promise<Hash> {
  const hash = createHash("sha256");
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  return hash;
}

export class BlobStore {
  /** Uploads with an append in progress: one at a time each. */
  readonly #appending = new Set<string>();
  /** The running hash of each partial upload this process appended to, valid at `offset`. */
  readonly #hashes = new Map<string, { hash: Hash; offset: number }>();

  private constructor(
    private readonly dir: string,
    private readonly tmpDir: string,
    private readonly uploadsDir: string,
    readonly maxBlobBytes: number,
  ) {}

  static async open(
    root: string,
    maxBlobBytes = DEFAULT_MAX_BLOB_BYTES,
    partialTtlMs = DEFAULT_PARTIAL_TTL_MS,
  ): Promise<BlobStore> {
    const dir = join(root, "blobs");
    const tmpDir = join(root, "tmp");
    const uploadsDir = join(root, "uploads");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await mkdir(tmpDir, { recursive: true, mode: 0o700 });
    await mkdir(uploadsDir, { recursive: true, mode: 0o700 });
    // Abandoned resumable uploads would hold disk forever: drop those nobody touched for a while.
    const now = Date.now();
    for (const name of await readdir(uploadsDir)) {
      const path = join(uploadsDir, name);
      const st = await stat(path).catch(() => undefined);
      if (st && now - st.mtimeMs > partialTtlMs) await rm(path, { force: true });
    }
    return new BlobStore(dir, tmpDir, uploadsDir, maxBlobBytes);
  }

  private path(id: string): string {
    assertBlobId(id);
    return join(this.dir, id);
  }

  /** Size of a stored blob, or null when absent. */
  async size(id: string): Promise<number | null> {
    try {
      return (await stat(this.path(id))).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw e;
    }
  }

  /**
   * Store the stream under `id` if its SHA-256 is `id`. An existing blob is left untouched
   * (`created: false`) and the stream is not read.
   */
  async put(id: string, source: Readable): Promise<{ created: boolean; size: number }> {
    const existing = await this.size(id);
    if (existing !== null) return { created: false, size: existing };
    const final = this.path(id);
    const tmp = tmpName(this.tmpDir);
    try {
      const digest = await copyHashing(source, tmp, this.maxBlobBytes);
      if (digest !== id) throw new DigestMismatchError();
      await fsyncPath(tmp);
      // A concurrent PUT of the same id renames identical bytes over ours: still atomic and correct.
      await rename(tmp, final);
      await fsyncPath(this.dir);
    } catch (e) {
      await rm(tmp, { force: true });
      throw storeFailure(e);
    }
    return { created: true, size: (await stat(final)).size };
  }

  async read(id: string): Promise<StoredFile> {
    const size = await this.size(id);
    if (size === null) throw new NotFoundError("blob not found");
    return { stream: createReadStream(this.path(id)), size };
  }

  #partPaths(id: string): { part: string; length: string } {
    assertBlobId(id);
    return { part: join(this.uploadsDir, `${id}.part`), length: join(this.uploadsDir, `${id}.length`) };
  }

  async #declaredLength(path: string): Promise<number | null> {
    try {
      const n = Number(await readFile(path, "utf8"));
      return Number.isSafeInteger(n) && n > 0 ? n : null;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw e;
    }
  }

  /** How much of blob `id` the host holds: all of it, part of a resumable upload, or nothing. */
  async uploadStatus(id: string): Promise<UploadStatus> {
    const size = await this.size(id);
    if (size !== null) return { offset: size, length: size, complete: true };
    const paths = this.#partPaths(id);
    const length = await this.#declaredLength(paths.length);
    return { offset: (await sizeOrNull(paths.part)) ?? 0, length, complete: false };
  }

  /**
   * Appends `source` at `offset` to the resumable upload of blob `id`, `length` bytes in all.
   * `offset` must be exactly what the host holds (UploadOffsetError otherwise). Bytes that arrive
   * before the client goes away are kept, so the next append resumes after them. When the upload
   * reaches `length` its SHA-256 must be `id` (DigestMismatchError, and the partial is dropped);
   * it then becomes the blob. An already stored blob is not appended to (`created: false`).
   */
  async append(
    id: string,
    offset: number,
    length: number,
    source: Readable,
  ): Promise<UploadStatus & { created: boolean }> {
    const existing = await this.size(id);
    if (existing !== null) return { offset: existing, length: existing, complete: true, created: false };
    if (length > this.maxBlobBytes) throw new TooLargeError("blob too large");
    const paths = this.#partPaths(id);
    if (this.#appending.has(id)) throw new UploadConflictError("another request is appending to this upload");
    this.#appending.add(id);
    try {
      const declared = await this.#declaredLength(paths.length);
      if (declared !== null && declared !== length) {
        throw new UploadConflictError("upload was started with another length");
      }
      const held = (await sizeOrNull(paths.part)) ?? 0;
      if (offset !== held || held > length) throw new UploadOffsetError();
      if (declared === null) await writeFile(paths.length, String(length), { mode: 0o600 });
      const known = this.#hashes.get(id);
      this.#hashes.delete(id);
      // After a restart (or a refused append) the running hash is rebuilt from the bytes on disk.
      const hash = known?.offset === held ? known.hash : await hashOf(paths.part);
      let appended: Awaited<ReturnType<typeof appendHashing>>;
      try {
        appended = await appendHashing(source, paths.part, hash, length - held);
      } catch (e) {
        // Nothing of a refused append is kept: the upload stays where it was.
        await truncate(paths.part, held).catch(() => undefined);
        throw e;
      }
      await fsyncPath(paths.part);
      const now = held + appended.written;
      if (appended.sourceError !== undefined || now < length) {
        this.#hashes.set(id, { hash, offset: now });
        if (appended.sourceError !== undefined) throw appended.sourceError;
        return { offset: now, length, complete: false, created: false };
      }
      if (hash.digest("hex") !== id) {
        await rm(paths.part, { force: true });
        await rm(paths.length, { force: true });
        throw new DigestMismatchError();
      }
      await rename(paths.part, this.path(id));
      await fsyncPath(this.dir);
      await rm(paths.length, { force: true });
      return { offset: length, length, complete: true, created: true };
    } catch (e) {
      throw storeFailure(e);
    } finally {
      this.#appending.delete(id);
    }
  }
}

export interface StoredResult {
  id: string;
  response: string;
  recipients: string[];
}

export class ResultStore {
  private constructor(
    private readonly dir: string,
    private readonly tmpDir: string,
  ) {}

  static async open(root: string): Promise<ResultStore> {
    const dir = join(root, "results");
    const tmpDir = join(root, "tmp");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await mkdir(tmpDir, { recursive: true, mode: 0o700 });
    return new ResultStore(dir, tmpDir);
  }

  /** Keep one query run's signed response and per-party ciphertexts under a fresh random id. */
  async save(response: string, results: ReadonlyMap<string, Uint8Array>): Promise<StoredResult> {
    const id = randomBytes(16).toString("hex");
    const recipients = [...results.keys()].sort();
    for (const party of recipients) assertPartyId(party);
    // Built in tmp/ and renamed into place, so a reader never sees half a result.
    const work = tmpName(this.tmpDir);
    try {
      await mkdir(work, { mode: 0o700 });
      for (const party of recipients) {
        await writeFile(join(work, `${party}.age`), results.get(party)!, { mode: 0o600, flag: "wx" });
      }
      await writeFile(join(work, "meta.json"), JSON.stringify({ response, recipients }), { mode: 0o600 });
      await rename(work, join(this.dir, id));
    } catch (e) {
      await rm(work, { recursive: true, force: true });
      throw e;
    }
    return { id, response, recipients };
  }

  async meta(id: string): Promise<StoredResult> {
    assertResultId(id);
    try {
      const parsed = JSON.parse(await readFile(join(this.dir, id, "meta.json"), "utf8")) as StoredResult;
      return { id, response: parsed.response, recipients: parsed.recipients };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError("result not found");
      throw e;
    }
  }

  /**
   * The runs whose results include one for `party`, newest first, at most `limit`, with the time
   * each was stored. Reads every run's meta.json: a listing costs one small read per stored run.
   */
  async listFor(party: string, limit: number): Promise<(StoredResult & { created: string })[]> {
    assertPartyId(party);
    const found: (StoredResult & { created: string; ms: number })[] = [];
    for (const name of await readdir(this.dir)) {
      try {
        assertResultId(name);
      } catch {
        continue;
      }
      const meta = await this.meta(name).catch(() => undefined);
      if (!meta?.recipients.includes(party)) continue;
      const ms = (await stat(join(this.dir, name))).mtimeMs;
      found.push({ ...meta, created: new Date(ms).toISOString(), ms });
    }
    found.sort((a, b) => b.ms - a.ms || (a.id < b.id ? -1 : 1));
    return found.slice(0, limit).map(({ ms: _ms, ...r }) => r);
  }

  async read(id: string, party: string): Promise<StoredFile> {
    assertResultId(id);
    assertPartyId(party);
    const path = join(this.dir, id, `${party}.age`);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError("result not found");
      throw e;
    }
    return { stream: createReadStream(path), size };
  }
}

export interface AuditHead {
  seq: number;
  hash: string;
}

const ZERO_HASH = "0".repeat(64);
const HEX64 = /^[0-9a-f]{64}$/;

/** One audit JWS as the host reads it: its seq, the hash it links to, and its own hash. */
export interface AuditLink extends AuditHead {
  prev: string;
}

/**
 * The seq, `prev` and entry hash of an audit JWS (PROTOCOL.md §5: the hash is SHA-256 over the
 * payload bytes). No signature is checked here: parties verify the log themselves; the host only
 * keeps its copy in order and linked.
 */
export function auditEntryHead(jws: string): AuditLink {
  const parts = jws.split(".");
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]+$/.test(parts[1]!)) {
    throw new EnclaveProtocolError("audit entry malformed");
  }
  const payload = Buffer.from(parts[1]!, "base64url");
  let entry: { seq?: unknown; prev?: unknown };
  try {
    entry = JSON.parse(payload.toString("utf8")) as { seq?: unknown; prev?: unknown };
  } catch {
    throw new EnclaveProtocolError("audit entry malformed");
  }
  const { seq, prev } = entry ?? {};
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) {
    throw new EnclaveProtocolError("audit entry malformed");
  }
  if (typeof prev !== "string" || !HEX64.test(prev)) throw new EnclaveProtocolError("audit entry malformed");
  return { seq, prev, hash: createHash("sha256").update(payload).digest("hex") };
}

/** The host's append-only copy of the enclave's audit log, entry i at index i-1. */
export class AuditStore {
  private constructor(
    private readonly file: string,
    private readonly entries: string[],
    /** hashes[seq] is entry seq's hash; hashes[0] the genesis value. */
    private readonly hashes: string[],
  ) {}

  static async open(root: string): Promise<AuditStore> {
    await mkdir(root, { recursive: true, mode: 0o700 });
    const file = join(root, "audit.jsonl");
    let text = "";
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    const entries: string[] = [];
    const hashes = [ZERO_HASH];
    const lines = text.split("\n");
    // The last piece has no newline: empty, or a write torn by a crash, which is dropped.
    const torn = lines.pop()!;
    for (const line of lines) {
      const { seq, jws } = JSON.parse(line) as { seq: number; jws: string };
      const link = auditEntryHead(jws);
      if (link.seq !== seq || seq !== entries.length + 1 || link.prev !== hashes[seq - 1]) {
        throw new EnclaveProtocolError("audit store corrupt");
      }
      entries.push(jws);
      hashes.push(link.hash);
    }
    if (torn !== "") await truncate(file, Buffer.byteLength(text) - Buffer.byteLength(torn));
    return new AuditStore(file, entries, hashes);
  }

  get head(): AuditHead {
    const seq = this.entries.length;
    return { seq, hash: this.hashes[seq]! };
  }

  /** True when `head` is a point of the stored log (same seq, same hash). */
  holds(head: AuditHead): boolean {
    return head.seq <= this.entries.length && this.hashes[head.seq] === head.hash;
  }

  /**
   * Appends the entries that extend the stored log, in order. Entries already held must be the
   * very ones stored; each new one must carry the next seq and link (`prev`) to the stored head's
   * hash. Anything else is refused with AuditContinuityError and nothing is appended: the
   * enclave's chain is not a continuation of this copy. Returns how many were added.
   */
  async append(jwsList: readonly string[]): Promise<number> {
    const added: string[] = [];
    const hashes: string[] = [];
    let head = this.head;
    for (const jws of jwsList) {
      const link = auditEntryHead(jws);
      if (link.seq <= this.entries.length && added.length === 0) {
        if (this.entries[link.seq - 1] !== jws) throw new AuditContinuityError();
        continue;
      }
      if (link.seq !== head.seq + 1 || link.prev !== head.hash) throw new AuditContinuityError();
      added.push(jws);
      hashes.push(link.hash);
      head = link;
    }
    if (added.length === 0) return 0;
    const lines = added.map((jws, i) => `${JSON.stringify({ seq: this.entries.length + i + 1, jws })}\n`);
    await appendFile(this.file, lines.join(""), { mode: 0o600 });
    this.entries.push(...added);
    this.hashes.push(...hashes);
    return added.length;
  }

  /** Entries with seq >= from (default 1), and the head of the whole stored log. */
  list(from = 1): { entries: string[]; head: AuditHead } {
    return { entries: this.entries.slice(Math.max(0, from - 1)), head: this.head };
  }
}

export interface HostStore {
  blobs: BlobStore;
  results: ResultStore;
  audit: AuditStore;
  guard: GuardHistoryStore;
}

export async function openHostStore(
  root: string,
  opts: { maxBlobBytes?: number; partialTtlMs?: number } = {},
): Promise<HostStore> {
  return {
    blobs: await BlobStore.open(root, opts.maxBlobBytes, opts.partialTtlMs),
    results: await ResultStore.open(root),
    audit: await AuditStore.open(root),
    guard: await GuardHistoryStore.open(root),
  };
}

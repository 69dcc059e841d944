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
 *   tmp/                          in-flight writes (same filesystem, so rename is atomic)
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { appendFile, mkdir, open, readFile, rename, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { DigestMismatchError, EnclaveProtocolError, NotFoundError, TooLargeError } from "./errors.js";
import { assertBlobId, assertPartyId, assertResultId } from "./ids.js";

/** 64 GiB: the default ceiling for one uploaded age file. */
export const DEFAULT_MAX_BLOB_BYTES = 64 * 1024 ** 3;

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
 * Copy `source` into `path` (created exclusively, mode 0600) while hashing, failing with
 * TooLargeError past `maxBytes`. The source is paused, not destroyed, on failure, so the caller
 * can still answer the client on the same connection.
 */
async function copyHashing(source: Readable, path: string, maxBytes: number): Promise<string> {
  const hash = createHash("sha256");
  const sink = createWriteStream(path, { flags: "wx", mode: 0o600 });
  let size = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (e: unknown) => {
        source.off("data", onData);
        source.pause();
        reject(e);
      };
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) return fail(new TooLargeError("blob too large"));
        hash.update(chunk);
        if (!sink.write(chunk)) source.pause();
      };
      sink.on("drain", () => source.resume());
      sink.on("error", fail);
      source.on("data", onData);
      finished(source, { writable: false }).then(() => sink.end(), fail);
      sink.on("finish", resolve);
    });
  } finally {
    if (!sink.closed) {
      sink.destroy();
      await finished(sink).catch(() => undefined);
    }
  }
  return hash.digest("hex");
}

export class BlobStore {
  private constructor(
    private readonly dir: string,
    private readonly tmpDir: string,
    readonly maxBlobBytes: number,
  ) {}

  static async open(root: string, maxBlobBytes = DEFAULT_MAX_BLOB_BYTES): Promise<BlobStore> {
    const dir = join(root, "blobs");
    const tmpDir = join(root, "tmp");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await mkdir(tmpDir, { recursive: true, mode: 0o700 });
    return new BlobStore(dir, tmpDir, maxBlobBytes);
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
      throw e;
    }
    return { created: true, size: (await stat(final)).size };
  }

  async read(id: string): Promise<StoredFile> {
    const size = await this.size(id);
    if (size === null) throw new NotFoundError("blob not found");
    return { stream: createReadStream(this.path(id)), size };
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

/**
 * The seq and entry hash of an audit JWS (PROTOCOL.md §5: the hash is SHA-256 over the payload
 * bytes). Nothing is verified here: parties verify the log themselves; the host only needs the
 * seq to keep its copy in order.
 */
export function auditEntryHead(jws: string): AuditHead {
  const parts = jws.split(".");
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]+$/.test(parts[1]!)) {
    throw new EnclaveProtocolError("audit entry malformed");
  }
  const payload = Buffer.from(parts[1]!, "base64url");
  let seq: unknown;
  try {
    seq = (JSON.parse(payload.toString("utf8")) as { seq?: unknown }).seq;
  } catch {
    throw new EnclaveProtocolError("audit entry malformed");
  }
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) {
    throw new EnclaveProtocolError("audit entry malformed");
  }
  return { seq, hash: createHash("sha256").update(payload).digest("hex") };
}

/** The host's append-only copy of the enclave's audit log, entry i at index i-1. */
export class AuditStore {
  private constructor(
    private readonly file: string,
    private readonly entries: string[],
    private headValue: AuditHead,
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
    let head: AuditHead = { seq: 0, hash: ZERO_HASH };
    const lines = text.split("\n");
    // The last piece has no newline: empty, or a write torn by a crash, which is dropped.
    const torn = lines.pop()!;
    for (const line of lines) {
      const { seq, jws } = JSON.parse(line) as { seq: number; jws: string };
      head = auditEntryHead(jws);
      if (head.seq !== seq || seq !== entries.length + 1)
        throw new EnclaveProtocolError("audit store corrupt");
      entries.push(jws);
    }
    if (torn !== "") await truncate(file, Buffer.byteLength(text) - Buffer.byteLength(torn));
    return new AuditStore(file, entries, head);
  }

  get head(): AuditHead {
    return this.headValue;
  }

  /**
   * Append the entries that extend the stored log, in order: entries already held are skipped,
   * and anything after a gap is ignored (fetched again next time). Returns how many were added.
   */
  async append(jwsList: readonly string[]): Promise<number> {
    const lines: string[] = [];
    let head = this.headValue;
    const added: string[] = [];
    for (const jws of jwsList) {
      const h = auditEntryHead(jws);
      if (h.seq <= head.seq) continue;
      if (h.seq !== head.seq + 1) break;
      lines.push(`${JSON.stringify({ seq: h.seq, jws })}\n`);
      added.push(jws);
      head = h;
    }
    if (lines.length === 0) return 0;
    await appendFile(this.file, lines.join(""), { mode: 0o600 });
    this.entries.push(...added);
    this.headValue = head;
    return added.length;
  }

  /** Entries with seq >= from (default 1), and the head of the whole stored log. */
  list(from = 1): { entries: string[]; head: AuditHead } {
    return { entries: this.entries.slice(Math.max(0, from - 1)), head: this.headValue };
  }
}

export interface HostStore {
  blobs: BlobStore;
  results: ResultStore;
  audit: AuditStore;
}

export async function openHostStore(root: string, opts: { maxBlobBytes?: number } = {}): Promise<HostStore> {
  return {
    blobs: await BlobStore.open(root, opts.maxBlobBytes),
    results: await ResultStore.open(root),
    audit: await AuditStore.open(root),
  };
}

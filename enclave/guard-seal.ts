/**
 * Sealing the differencing guard's history across restarts.
 *
 * What a guarded query released (people sets, enclave/sql/differencing.ts) must outlive the
 * instance, yet never be readable outside an enclave. Each run that released rows seals its new
 * sets with AES-256-GCM under a key no single party and not the host holds: HKDF over the seal
 * shares of the owners of every dataset the query reads. A share is derived by each owner from
 * its own secret identity and the contract digest (client/sdk/seal-share.ts), so it survives a
 * lost client state, and reaches the enclave only inside a grant (a JWE to the attested key).
 * Reading a sealed history therefore needs every owner whose data it describes, and those owners
 * together could exchange their data directly anyway.
 *
 * The host stores the sealed blobs beside the audit chain; the query-run entry that released
 * the rows carries the blob's SHA-256, so a restored blob is the one that run sealed or it is
 * refused. A run whose blob is missing, or that cannot be opened (an owner's share changed),
 * leaves its query frozen in the new instance (the guard's `lost`), never forgotten.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";
import { endianness } from "node:os";
import { CleanroomError } from "../attestation/errors.js";
import type { PeopleSets } from "./sql/differencing.js";

export const SEAL_SHARE_BYTES = 32;
const VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** A sealed run holds at most this many hashes (the guard's own bound is far below). */
const MAX_HASHES = 100_000_000;
if (endianness() !== "LE") throw new Error("the guard seal format assumes a little-endian platform");

/** A grant's seal share differs from the one its party gave this instance before. */
export class SealShareError extends CleanroomError {
  static override code = "ERR_SEAL_SHARE";
}

/** Hex SHA-256 of a sealed blob, as its query-run audit entry carries it. */
export function sealedDigest(blob: Uint8Array): string {
  return createHash("sha256").update(blob).digest("hex");
}

/** The seal shares the dataset owners gave this instance in their grants. */
export class SealShares {
  readonly #shares = new Map<string, Uint8Array>();

  /** Records `party`'s share; a later grant must carry the same one. */
  record(party: string, share: Uint8Array): void {
    if (share.length !== SEAL_SHARE_BYTES) throw new SealShareError("seal share must be 32 bytes");
    const known = this.#shares.get(party);
    if (known && !Buffer.from(known).equals(share)) {
      throw new SealShareError("seal share differs from the one this party granted before");
    }
    this.#shares.set(party, Uint8Array.from(share));
  }

  /**
   * The key that seals `queryId`'s history: HKDF-SHA256 over the shares of `owners` (sorted),
   * salted with the contract digest. Undefined while an owner has not granted in this instance.
   */
  key(contractDigest: string, queryId: string, owners: readonly string[]): Uint8Array | undefined {
    const sorted = [...new Set(owners)].sort();
    const shares = sorted.map((p) => this.#shares.get(p));
    if (shares.some((s) => s === undefined)) return undefined;
    const ikm = Buffer.concat(shares as Uint8Array[]);
    const info = `cleanroom-guard-seal-v1\n${queryId}\n${sorted.join(",")}`;
    return new Uint8Array(hkdfSync("sha256", ikm, Buffer.from(contractDigest, "hex"), info, 32));
  }
}

/** The additional data every blob of one query is bound to. */
function aad(contractDigest: string, queryId: string): Buffer {
  return Buffer.from(`cleanroom-guard-seal-v1\n${contractDigest}\n${queryId}`);
}

/** Seals the rows one run released: version, nonce, AES-256-GCM(encoded rows), tag. */
export function sealReleased(
  key: Uint8Array,
  contractDigest: string,
  queryId: string,
  rows: readonly PeopleSets[],
): Uint8Array {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(contractDigest, queryId));
  const body = Buffer.concat([cipher.update(encodeRows(rows)), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), nonce, body, cipher.getAuthTag()]);
}

/** Opens a blob sealed by `sealReleased`; undefined when the key or the blob is not the sealing one. */
export function openReleased(
  key: Uint8Array,
  contractDigest: string,
  queryId: string,
  blob: Uint8Array,
): PeopleSets[] | undefined {
  if (blob.length < 1 + NONCE_BYTES + TAG_BYTES || blob[0] !== VERSION) return undefined;
  const nonce = blob.subarray(1, 1 + NONCE_BYTES);
  const tag = blob.subarray(blob.length - TAG_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad(contractDigest, queryId));
  decipher.setAuthTag(tag);
  let plain: Buffer;
  try {
    plain = Buffer.concat([
      decipher.update(blob.subarray(1 + NONCE_BYTES, blob.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    return undefined;
  }
  return decodeRows(plain);
}

/**
 * rows:u32, then per row tables:u32, then per table n:u32 and n little-endian u64 hashes. The
 * hashes are copied as the typed array's bytes: every platform the enclave runs on (x86-64 and
 * arm64) is little-endian, which the import below asserts.
 */
function encodeRows(rows: readonly PeopleSets[]): Buffer {
  let size = 4;
  for (const sets of rows) size += 4 + sets.reduce((n, s) => n + 4 + 8 * s.length, 0);
  const out = Buffer.alloc(size);
  let at = out.writeUInt32LE(rows.length, 0);
  for (const sets of rows) {
    at = out.writeUInt32LE(sets.length, at);
    for (const s of sets) {
      at = out.writeUInt32LE(s.length, at);
      out.set(new Uint8Array(s.buffer, s.byteOffset, s.byteLength), at);
      at += s.byteLength;
    }
  }
  return out;
}

/** The inverse of encodeRows; authenticated bytes, still checked so a bug cannot overrun. */
function decodeRows(buf: Buffer): PeopleSets[] | undefined {
  let at = 0;
  let hashes = 0;
  const u32 = (): number | undefined => {
    if (at + 4 > buf.length) return undefined;
    const v = buf.readUInt32LE(at);
    at += 4;
    return v;
  };
  const count = u32();
  if (count === undefined) return undefined;
  const rows: PeopleSets[] = [];
  for (let r = 0; r < count; r++) {
    const tables = u32();
    if (tables === undefined) return undefined;
    const sets: PeopleSets = [];
    for (let t = 0; t < tables; t++) {
      const n = u32();
      hashes += n ?? 0;
      if (n === undefined || at + 8 * n > buf.length || hashes > MAX_HASHES) return undefined;
      const set = new BigUint64Array(n);
      new Uint8Array(set.buffer).set(buf.subarray(at, at + 8 * n));
      at += 8 * n;
      sets.push(set);
    }
    rows.push(sets);
  }
  return at === buf.length ? rows : undefined;
}

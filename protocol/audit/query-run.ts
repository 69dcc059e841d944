/**
 * What a query run publishes, and what only its parties learn (docs/PROTOCOL.md §5, "Query runs").
 *
 * The host sees the signed response and the audit entry, so nothing in them may be a function of
 * low-entropy secrets alone (a result, a parameter) that it could invert by hashing candidates:
 *
 * - each recipient's result is digested as its age ciphertext (`ciphertextDigest`), which carries
 *   a fresh random file key, so no guess of the plaintext reproduces it;
 * - the parameters are digested as HMAC-SHA256 under a fresh 32-byte key per run
 *   (`paramsDigest`), which only the requester and the recipients receive, in their receipt;
 * - the released row count travels only inside the recipients' receipts; how many groups a run
 *   held back (under k, or by the differencing guard) is counted nowhere: it would tell whether
 *   anyone matched, however few.
 *
 * A receipt is a small JSON document age-encrypted to one party, padded to a fixed length so its
 * ciphertext has the same size whatever it holds. Browser-safe (WebCrypto only).
 */
import { fromHex, sha256, toHex } from "../../attestation/bytes.js";
import { canonicalBytes } from "../contract/digest.js";
import { HEX64, isPlainObject, keysProblem, PARTY_ID, parseJsonObject } from "../jose/lib/shape.js";
import type { AuditEntry } from "./entry.js";

/** Plaintext length of every receipt (JSON padded with spaces). */
export const RECEIPT_BYTES = 512;
/** Length of the per-run parameter-digest key. */
export const PARAMS_KEY_BYTES = 32;
/** At most one entry per party of a contract (32), with room to spare. */
export const MAX_RUN_PARTIES = 64;

/** What one party of a run learns privately; `rows` only if it is a recipient. */
export interface QueryReceipt {
  version: 1;
  query: string;
  requester: string;
  /** The party this receipt is encrypted to. */
  party: string;
  format: "csv" | "json";
  /** 64 hex: the key of this run's `paramsDigest`. */
  paramsKey: string;
  /** Rows released in this party's result (which the result itself shows). */
  rows?: number;
  /**
   * Recipients only, a DP run only: the noisy rows exceeded the released-row cap and the result
   * holds the first `rows` of them in canonical order.
   */
  truncated?: true;
}

const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

/** HMAC-SHA256(paramsKey, RFC 8785 canonical bytes of `params`), hex. */
export async function paramsDigest(paramsKey: string | Uint8Array, params: unknown): Promise<string> {
  const raw = typeof paramsKey === "string" ? fromHex(paramsKey) : paramsKey;
  if (raw.length !== PARAMS_KEY_BYTES) throw new TypeError("params key must be 32 bytes");
  const key = await crypto.subtle.importKey(
    "raw",
    raw as BufferSource,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return toHex(new Uint8Array(await crypto.subtle.sign("HMAC", key, canonicalBytes(params) as BufferSource)));
}

/** SHA-256 (hex) of one recipient's whole age file, as stored by the host. */
export async function ciphertextDigest(ciphertext: Uint8Array): Promise<string> {
  return toHex(await sha256(ciphertext));
}

/** A fresh parameter-digest key (hex). */
export function newParamsKey(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(PARAMS_KEY_BYTES)));
}

/** A receipt's plaintext: its canonical JSON, padded with spaces to exactly RECEIPT_BYTES. */
export function encodeReceipt(receipt: QueryReceipt): Uint8Array {
  if (!isReceipt(receipt)) throw new TypeError("malformed receipt");
  const json = canonicalBytes(receipt);
  if (json.length > RECEIPT_BYTES) throw new TypeError("receipt too long");
  const out = new Uint8Array(RECEIPT_BYTES).fill(0x20);
  out.set(json);
  return out;
}

/** The receipt in `bytes` (exact length, closed fields), or undefined. */
export function parseReceipt(bytes: Uint8Array): QueryReceipt | undefined {
  if (bytes.length !== RECEIPT_BYTES) return undefined;
  const v = parseJsonObject(bytes);
  return v && isReceipt(v) ? v : undefined;
}

export function isReceipt(v: unknown): v is QueryReceipt {
  return (
    isPlainObject(v) &&
    !keysProblem(
      v,
      ["version", "query", "requester", "party", "format", "paramsKey"],
      ["rows", "truncated"],
    ) &&
    v.version === 1 &&
    typeof v.query === "string" &&
    PARTY_ID.test(v.query) &&
    typeof v.requester === "string" &&
    PARTY_ID.test(v.requester) &&
    typeof v.party === "string" &&
    PARTY_ID.test(v.party) &&
    (v.format === "csv" || v.format === "json") &&
    typeof v.paramsKey === "string" &&
    HEX64.test(v.paramsKey) &&
    (v.rows === undefined || count(v.rows)) &&
    (v.truncated === undefined || (v.truncated === true && v.rows !== undefined))
  );
}

/** `{party: 64 hex}` with 1..MAX_RUN_PARTIES party ids; with `parties`, exactly those keys. */
export function isDigestMap(v: unknown, parties?: readonly string[]): v is Record<string, string> {
  if (!isPlainObject(v)) return false;
  const keys = Object.keys(v);
  if (keys.length === 0 || keys.length > MAX_RUN_PARTIES) return false;
  if (!keys.every((k) => PARTY_ID.test(k) && typeof v[k] === "string" && HEX64.test(v[k] as string))) {
    return false;
  }
  return parties === undefined || sameSet(keys, parties);
}

/** True when `a` and `b` hold the same strings, each once. */
export function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const s = new Set(b);
  return (
    a.length === b.length && s.size === b.length && new Set(a).size === a.length && a.every((x) => s.has(x))
  );
}

export interface RunEvidence {
  /** The party checking; its result digest is looked up under this id. */
  party: string;
  /** The age file this party received (as fetched from the host). */
  ciphertext?: Uint8Array;
  /** The parameters the party believes were used, and the key from its receipt. */
  params?: unknown;
  paramsKey?: string;
}

/**
 * True when a verified query-run entry binds what this party holds: its result ciphertext hashes
 * to its `resultDigests` entry, and the parameters it knows digest to `paramsDigest` under the
 * key of its receipt. Only the parts given are checked; at least one must be.
 */
export async function runEntryBinds(entry: AuditEntry<"query-run">, o: RunEvidence): Promise<boolean> {
  let checked = false;
  if (o.ciphertext !== undefined) {
    const want = Object.hasOwn(entry.data.resultDigests, o.party)
      ? entry.data.resultDigests[o.party]
      : undefined;
    if (want === undefined || (await ciphertextDigest(o.ciphertext)) !== want) return false;
    checked = true;
  }
  if (o.params !== undefined || o.paramsKey !== undefined) {
    if (o.params === undefined || o.paramsKey === undefined || !HEX64.test(o.paramsKey)) return false;
    if ((await paramsDigest(o.paramsKey, o.params)) !== entry.data.paramsDigest) return false;
    checked = true;
  }
  return checked;
}

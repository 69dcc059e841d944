/**
 * Audit entry format (parsing and hashing only; no signatures here).
 *
 * An entry is {seq, prev, time, kind, data}; it is stored as a compact JWS whose payload is the
 * entry's RFC 8785 canonical bytes. Its hash, which the next entry's `prev` and chain heads
 * carry, is SHA-256 over exactly those bytes.
 */
import { bytesEqual, sha256, toHex } from "../../attestation/bytes.js";
import { canonicalBytes } from "../contract/digest.js";
import { DATASET_ID, HEX64, isPlainObject, keysProblem, PARTY_ID } from "../jose/lib/shape.js";
import { isDigestMap, sameSet } from "./query-run.js";

export const AUDIT_TYP = "cleanroom-audit+jws";
export const GENESIS_HASH = "0".repeat(64);

export interface AuditHead {
  /** seq of the last entry; 0 for an empty log. */
  seq: number;
  /** Hex SHA-256 of the last entry's canonical bytes; 64 zeros for an empty log. */
  hash: string;
}

/**
 * One charge to a party's privacy budget (enclave/dp/budget.ts), carried by the query-run entry
 * that spent it so a restarted enclave can rebuild every party's spending from the audit chain.
 */
export interface BudgetDebit {
  party: string;
  /** Micro-epsilon charged by this run (> 0). */
  micros: number;
  /** The party's total micro-epsilon on this contract after this run. */
  total: number;
}

export interface AuditData {
  /** A new enclave instance took over the log: its signing key's RFC 7638 SHA-256 thumbprint. */
  "enclave-started": { signingKey: string; keysDigest: string };
  "contract-accepted": { contract: string };
  grant: { dataset: string; party: string; ciphertextDigest: string };
  "dataset-loaded": { dataset: string; ciphertextDigest: string; rows: number };
  "query-run": {
    query: string;
    requester: string;
    /**
     * HMAC-SHA256 of the canonical parameters under a key drawn for this run, which only the
     * requester and the recipients receive (protocol/audit/query-run.ts): uninvertible by others.
     */
    paramsDigest: string;
    /** Per recipient: SHA-256 of the age file it received (random file key: uninvertible). */
    resultDigests: Record<string, string>;
    epsilon: number;
    /** Present exactly when the run spent epsilon (a DP policy): one debit per recipient, who all learn the answer. */
    debits?: BudgetDebit[];
  };
}
export type AuditKind = keyof AuditData;

export interface AuditEntry<K extends AuditKind = AuditKind> {
  seq: number;
  prev: string;
  /** RFC 3339 UTC time from the enclave's clock (informative; ordering comes from seq). */
  time: string;
  kind: K;
  data: AuditData[K];
}

const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

const str = (v: unknown, re: RegExp) => typeof v === "string" && re.test(v);
const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

const DATA_CHECKS: { [K in AuditKind]: (d: Record<string, unknown>) => boolean } = {
  "enclave-started": (d) =>
    !keysProblem(d, ["signingKey", "keysDigest"]) &&
    str(d.signingKey, THUMBPRINT) &&
    str(d.keysDigest, HEX64),
  "contract-accepted": (d) => !keysProblem(d, ["contract"]) && str(d.contract, HEX64),
  grant: (d) =>
    !keysProblem(d, ["dataset", "party", "ciphertextDigest"]) &&
    str(d.dataset, DATASET_ID) &&
    str(d.party, PARTY_ID) &&
    str(d.ciphertextDigest, HEX64),
  "dataset-loaded": (d) =>
    !keysProblem(d, ["dataset", "ciphertextDigest", "rows"]) &&
    str(d.dataset, DATASET_ID) &&
    str(d.ciphertextDigest, HEX64) &&
    count(d.rows),
  "query-run": (d) =>
    !keysProblem(d, ["query", "requester", "paramsDigest", "resultDigests", "epsilon"], ["debits"]) &&
    str(d.query, PARTY_ID) &&
    str(d.requester, PARTY_ID) &&
    str(d.paramsDigest, HEX64) &&
    isDigestMap(d.resultDigests) &&
    typeof d.epsilon === "number" &&
    Number.isFinite(d.epsilon) &&
    d.epsilon >= 0 &&
    (d.debits === undefined ? d.epsilon === 0 : debitsMatch(d.debits, d)),
};

/** One debit per recipient (the parties with a result digest), distinct parties, each as `debitMatches`. */
function debitsMatch(v: unknown, run: Record<string, unknown>): boolean {
  if (!Array.isArray(v) || v.length === 0 || v.length > 64) return false;
  if (!v.every((d) => debitMatches(d, run))) return false;
  const parties = v.map((d) => (d as BudgetDebit).party);
  return sameSet(parties, Object.keys(run.resultDigests as Record<string, string>));
}

/** A debit of exactly the epsilon the entry reports. */
function debitMatches(v: unknown, run: Record<string, unknown>): boolean {
  return (
    isPlainObject(v) &&
    !keysProblem(v, ["party", "micros", "total"]) &&
    str(v.party, PARTY_ID) &&
    count(v.micros) &&
    (v.micros as number) >= 1 &&
    count(v.total) &&
    (v.total as number) >= (v.micros as number) &&
    (v.micros as number) / 1e6 === run.epsilon
  );
}

/** True when `v` is a well-formed entry (exact fields at every level). */
export function isAuditEntry(v: unknown): v is AuditEntry {
  if (!isPlainObject(v) || keysProblem(v, ["seq", "prev", "time", "kind", "data"])) return false;
  if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 1) return false;
  if (!str(v.prev, HEX64) || !str(v.time, TIME)) return false;
  if (typeof v.kind !== "string" || !Object.hasOwn(DATA_CHECKS, v.kind)) return false;
  return isPlainObject(v.data) && DATA_CHECKS[v.kind as AuditKind](v.data);
}

/**
 * The entry in `payload` when the bytes are exactly the canonical form of a well-formed entry,
 * so that every verifier hashes the same bytes; undefined otherwise.
 */
export function parseEntryPayload(payload: Uint8Array): AuditEntry | undefined {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    return undefined;
  }
  if (!isAuditEntry(v) || !bytesEqual(canonicalBytes(v), payload)) return undefined;
  return v;
}

/** Hex SHA-256 of canonical entry bytes: the value of the next entry's `prev`. */
export async function entryHash(canonical: Uint8Array): Promise<string> {
  return toHex(await sha256(canonical));
}

/**
 * Audit entry format (parsing and hashing only; no signatures here).
 *
 * An entry is {seq, prev, time, kind, data}; it is stored as a compact JWS whose payload is the
 * entry's RFC 8785 canonical bytes. Its hash, which the next entry's `prev` and chain heads
 * carry, is SHA-256 over exactly those bytes.
 */
import { bytesEqual, fromBase64, sha256, toHex } from "../../attestation/bytes.js";
import type { Platform } from "../../attestation/result.js";
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

/** Whether `v` is an audit head: a `seq` >= 0 and a 64-hex `hash` (other members are not looked at). */
export function isAuditHead(v: unknown): v is AuditHead {
  const h = v as AuditHead | null;
  return (
    typeof h === "object" &&
    h !== null &&
    Number.isSafeInteger(h.seq) &&
    h.seq >= 0 &&
    typeof h.hash === "string" &&
    HEX64.test(h.hash)
  );
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

/**
 * An instance's public keys as bound in its evidence (attestation/binding.ts): the public members
 * of its ES256 key and its age recipient. Their digest is the entry's `keysDigest`.
 */
export interface InstanceKeys {
  signingKey: { kty: "EC"; crv: "P-256"; x: string; y: string };
  ageRecipient: string;
}

/**
 * The platform evidence an instance obtained at start, in the base64 form of an evidence bundle
 * (attestation/evidence.ts). Its report data binds the instance's keys, no contract, and as nonce
 * the 32 bytes of the entry's `prev`, so it vouches for these keys at this point of this chain only.
 */
export interface InstanceEvidence {
  platform: Platform;
  evidence: string;
  certificates?: { vcek?: string; ask?: string; ark?: string; certTable?: string };
}

export interface AuditData {
  /**
   * A new enclave instance took over the log: its signing key's RFC 7638 SHA-256 thumbprint, the
   * digest of its public keys, the keys themselves and its evidence over them, so any verifier can
   * trust the key of every segment without ever having talked to that instance.
   */
  "enclave-started": {
    signingKey: string;
    keysDigest: string;
    keys: InstanceKeys;
    evidence: InstanceEvidence;
  };
  "contract-accepted": { contract: string };
  grant: { dataset: string; party: string; ciphertextDigest: string };
  "dataset-loaded": {
    dataset: string;
    ciphertextDigest: string;
    /** Rows this load added. */
    rows: number;
    /**
     * The dataset's lineage in this instance (enclave/loads.ts): the version this load made (1 for
     * the first), how ("new", "replace" or "append"), and the rows of the table after it. Entries
     * written before versions existed lack all three.
     */
    version?: number;
    mode?: "new" | "replace" | "append";
    totalRows?: number;
  };
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
    /**
     * Present when the run added rows to the differencing guard's history: SHA-256 (hex) of that
     * history as sealed for a later instance (enclave/guard-seal.ts), which the host stores.
     */
    guard?: string;
    /** The version of each loaded dataset when the run read them (enclave/loads.ts); absent in older entries. */
    versions?: Record<string, number>;
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
/** A P-256 coordinate: 32 bytes in unpadded base64url. */
const COORDINATE = /^[A-Za-z0-9_-]{43}$/;
const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
/**
 * Base64 of one piece of evidence: a Nitro document is at most 17 KiB (attestation/nitro/cose.ts),
 * an SEV-SNP report 1184 bytes, a certificate or certificate table a few KiB.
 */
const MAX_EVIDENCE_B64 = 24 * 1024;
const CERTIFICATES = ["vcek", "ask", "ark", "certTable"] as const;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

const str = (v: unknown, re: RegExp) => typeof v === "string" && re.test(v);
const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

/** Canonical padded base64 of 1..MAX_EVIDENCE_B64 characters. */
function isBase64(v: unknown): boolean {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_EVIDENCE_B64) return false;
  try {
    fromBase64(v);
    return true;
  } catch {
    return false;
  }
}

function isInstanceKeys(v: unknown): v is InstanceKeys {
  if (!isPlainObject(v) || keysProblem(v, ["signingKey", "ageRecipient"])) return false;
  const k = v.signingKey;
  return (
    isPlainObject(k) &&
    !keysProblem(k, ["kty", "crv", "x", "y"]) &&
    k.kty === "EC" &&
    k.crv === "P-256" &&
    str(k.x, COORDINATE) &&
    str(k.y, COORDINATE) &&
    str(v.ageRecipient, AGE_RECIPIENT)
  );
}

function isInstanceEvidence(v: unknown): v is InstanceEvidence {
  if (!isPlainObject(v) || keysProblem(v, ["platform", "evidence"], ["certificates"])) return false;
  if ((v.platform !== "sev-snp" && v.platform !== "nitro") || !isBase64(v.evidence)) return false;
  if (v.certificates === undefined) return true;
  const c = v.certificates;
  return (
    isPlainObject(c) &&
    Object.keys(c).length > 0 &&
    !keysProblem(c, [], CERTIFICATES) &&
    Object.values(c).every(isBase64)
  );
}

const DATA_CHECKS: { [K in AuditKind]: (d: Record<string, unknown>) => boolean } = {
  "enclave-started": (d) =>
    !keysProblem(d, ["signingKey", "keysDigest", "keys", "evidence"]) &&
    str(d.signingKey, THUMBPRINT) &&
    str(d.keysDigest, HEX64) &&
    isInstanceKeys(d.keys) &&
    isInstanceEvidence(d.evidence),
  "contract-accepted": (d) => !keysProblem(d, ["contract"]) && str(d.contract, HEX64),
  grant: (d) =>
    !keysProblem(d, ["dataset", "party", "ciphertextDigest"]) &&
    str(d.dataset, DATASET_ID) &&
    str(d.party, PARTY_ID) &&
    str(d.ciphertextDigest, HEX64),
  "dataset-loaded": (d) =>
    !keysProblem(d, ["dataset", "ciphertextDigest", "rows"], ["version", "mode", "totalRows"]) &&
    str(d.dataset, DATASET_ID) &&
    str(d.ciphertextDigest, HEX64) &&
    count(d.rows) &&
    (d.version === undefined
      ? d.mode === undefined && d.totalRows === undefined
      : count(d.version) &&
        (d.version as number) >= 1 &&
        (d.mode === "new" || d.mode === "replace" || d.mode === "append") &&
        (d.mode === "new") === (d.version === 1) &&
        count(d.totalRows) &&
        (d.totalRows as number) >= (d.rows as number)),
  "query-run": (d) =>
    !keysProblem(
      d,
      ["query", "requester", "paramsDigest", "resultDigests", "epsilon"],
      ["debits", "guard", "versions"],
    ) &&
    str(d.query, PARTY_ID) &&
    str(d.requester, PARTY_ID) &&
    str(d.paramsDigest, HEX64) &&
    isDigestMap(d.resultDigests) &&
    typeof d.epsilon === "number" &&
    Number.isFinite(d.epsilon) &&
    d.epsilon >= 0 &&
    (d.debits === undefined ? d.epsilon === 0 : debitsMatch(d.debits, d)) &&
    (d.guard === undefined || str(d.guard, HEX64)) &&
    (d.versions === undefined || isVersionMap(d.versions)),
};

/** Dataset id → version (a positive integer), at most one per contract dataset. */
export function isVersionMap(v: unknown): v is Record<string, number> {
  if (!isPlainObject(v)) return false;
  const entries = Object.entries(v);
  return (
    entries.length <= 64 &&
    entries.every(([id, n]) => DATASET_ID.test(id) && Number.isSafeInteger(n) && (n as number) >= 1)
  );
}

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

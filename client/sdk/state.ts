/**
 * What a party remembers per host between runs: the last verified attestation, its audit heads,
 * its request counter, and the headers of its uploads. Storage is pluggable (files in Node,
 * anything in a browser); values are JSON text.
 *
 * Heads: the highest head of any signed answer this party verified (`highestHead`) is what it
 * presents in every grant and query, so the enclave refuses a log that does not hold it. An
 * answer to its own request must not be behind it (`answeredHead`: the enclave checked its chain
 * holds the head presented). Heads of other signed answers (a run another party requested, a
 * submitted contract) may be older, or on another fork, so each is also kept (`seenHeads`) for
 * `audit verify`, which requires the log to hold every one. A log's own head is never taken as
 * seen: a host can show any valid prefix.
 */
import type { EnclaveKeys } from "../../attestation/binding.js";
import { sha256, toHex } from "../../attestation/bytes.js";
import type { VerificationResult } from "../../attestation/result.js";
import type { AuditHead } from "../../protocol/audit/entry.js";
import { AuditError } from "../../protocol/audit/errors.js";
import { checkHeadNotRolledBack } from "../../protocol/audit/head.js";
import { EnvelopeError } from "../../protocol/jose/errors.js";
import { isHead } from "../../protocol/jose/lib/bodies.js";

export interface StateStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
}

export class MemoryStateStore implements StateStore {
  readonly values = new Map<string, string>();

  async get(key: string): Promise<string | undefined> {
    return this.values.get(key);
  }

  async set(key: string, value: string): Promise<void> {
    this.values.set(key, value);
  }
}

/** A verified attestation as cached: what was verified, under which policy and contract. */
export interface CachedAttestation {
  /** Fingerprint of the EvidencePolicy it was verified under; another policy re-verifies. */
  policy: string;
  contractDigest: string | null;
  keys: EnclaveKeys;
  result: VerificationResult;
  verifiedAt: string;
}

/** A stored upload: the age header lets the owner unwrap the file key again with its identity. */
export interface UploadRecord {
  digest: string;
  /** base64 of the age header bytes. */
  header: string;
  size: number;
}

/** A short, filesystem-safe name for a host URL (readable prefix + digest). */
export async function hostStateId(baseUrl: string): Promise<string> {
  const readable = baseUrl
    .replace(/^https?:\/\//, "")
    .replace(/[^A-Za-z0-9.-]+/g, "_")
    .slice(0, 48);
  const digest = toHex(await sha256(new TextEncoder().encode(baseUrl))).slice(0, 16);
  return `${readable}-${digest}`;
}

/** Remembered heads of other answers; the highest of them are the ones worth checking. */
const MAX_SEEN_HEADS = 1024;

function checkedHead(head: unknown): AuditHead {
  if (!isHead(head)) throw new EnvelopeError("response carries no audit head");
  const h = head as AuditHead;
  return { seq: h.seq, hash: h.hash };
}

export class HostState {
  constructor(
    readonly store: StateStore,
    readonly prefix: string,
  ) {}

  static async open(store: StateStore, baseUrl: string): Promise<HostState> {
    return new HostState(store, `hosts/${await hostStateId(baseUrl)}`);
  }

  async #read<T>(name: string): Promise<T | undefined> {
    const text = await this.store.get(`${this.prefix}/${name}`);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch {
      return undefined;
    }
  }

  #write(name: string, value: unknown): Promise<void> {
    return this.store.set(`${this.prefix}/${name}`, `${JSON.stringify(value, null, 2)}\n`);
  }

  attestation(): Promise<CachedAttestation | undefined> {
    return this.#read<CachedAttestation>("attestation.json");
  }

  /** Caches a verified attestation. */
  async saveAttestation(a: CachedAttestation): Promise<void> {
    await this.#write("attestation.json", a);
  }

  /** The highest head of a signed answer this party verified: what its requests present. */
  async highestHead(): Promise<AuditHead | undefined> {
    return (await this.#read<AuditHead | null>("head.json")) ?? undefined;
  }

  /** Forgets every head seen: only on the user's word that the clean room was reset. */
  async forgetHead(): Promise<void> {
    await this.#write("head.json", null);
    await this.#write("heads.json", []);
  }

  /**
   * The head of a signed answer to this party's own grant or query, which presented
   * `highestHead`: refused when behind it or forked from it (the enclave checked that its chain
   * holds it, so an honest answer extends it and needs no place in `seenHeads`).
   */
  async answeredHead(head: unknown): Promise<AuditHead> {
    const h = checkedHead(head);
    const seen = await this.highestHead();
    if (seen) checkHeadNotRolledBack(seen, h);
    await this.#notForked(h);
    if (!seen || h.seq > seen.seq) await this.#write("head.json", { seq: h.seq, hash: h.hash });
    return h;
  }

  /**
   * The head of any other signed answer: refused when it forks from a remembered one (same seq,
   * another hash), else kept for `audit verify` and the new highest when higher.
   */
  async observeHead(head: AuditHead): Promise<void> {
    const h = checkedHead(head);
    const heads = await this.#notForked(h);
    const highest = await this.highestHead();
    if (!heads.some((k) => k.seq === h.seq)) {
      const kept = [...heads, { seq: h.seq, hash: h.hash }].sort((a, b) => a.seq - b.seq);
      await this.#write("heads.json", kept.slice(-MAX_SEEN_HEADS));
    }
    if (!highest || h.seq > highest.seq) await this.#write("head.json", { seq: h.seq, hash: h.hash });
  }

  /** Throws when `h` forks from a remembered head; returns the seen heads. */
  async #notForked(h: AuditHead): Promise<AuditHead[]> {
    const heads = await this.seenHeads();
    const highest = await this.highestHead();
    for (const k of highest ? [highest, ...heads] : heads) {
      if (k.seq === h.seq && k.hash !== h.hash) throw new AuditError(h.seq, "head forked");
    }
    return heads;
  }

  /** Heads of signed answers other than its own requests' this party holds, by seq (the last MAX_SEEN_HEADS). */
  async seenHeads(): Promise<AuditHead[]> {
    const v = await this.#read<unknown>("heads.json");
    return Array.isArray(v) ? (v.filter(isHead) as AuditHead[]) : [];
  }

  /**
   * The next request counter for `party`: above the last one used and at least the clock in
   * milliseconds, so a lost state directory does not replay old counters.
   */
  async nextSeq(party: string): Promise<number> {
    const last = (await this.#read<{ seq: number }>(`seq-${party}.json`))?.seq ?? 0;
    const seq = Math.max(last + 1, Date.now());
    await this.#write(`seq-${party}.json`, { seq });
    return seq;
  }

  upload(digest: string): Promise<UploadRecord | undefined> {
    return this.#read<UploadRecord>(`uploads/${digest}.json`);
  }

  saveUpload(record: UploadRecord): Promise<void> {
    return this.#write(`uploads/${record.digest}.json`, record);
  }
}

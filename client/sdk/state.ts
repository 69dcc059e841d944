/**
 * What a party remembers per host between runs: the last verified attestation (and every
 * signing key it ever verified, for the audit log), the highest audit head seen, its request
 * counter, and the headers of its uploads. Storage is pluggable (files in Node, anything in a
 * browser); values are JSON text.
 */
import { calculateJwkThumbprint } from "jose";
import type { EnclaveKeys } from "../../attestation/binding.js";
import { sha256, toHex } from "../../attestation/bytes.js";
import type { VerificationResult } from "../../attestation/result.js";
import type { AuditHead } from "../../protocol/audit/entry.js";
import { checkHeadNotRolledBack } from "../../protocol/audit/head.js";

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

  /** Caches a verified attestation and adds its signing key to the attested set. */
  async saveAttestation(a: CachedAttestation): Promise<void> {
    await this.#write("attestation.json", a);
    const keys = await this.attestedSigningKeys();
    const thumb = await calculateJwkThumbprint(a.keys.signingKey, "sha256");
    for (const k of keys) if ((await calculateJwkThumbprint(k, "sha256")) === thumb) return;
    const { kty, crv, x, y } = a.keys.signingKey;
    await this.#write("attested-keys.json", [...keys, { kty, crv, x, y }]);
  }

  /** Every enclave signing key this party accepted through verified attestation. */
  async attestedSigningKeys(): Promise<JsonWebKey[]> {
    return (await this.#read<JsonWebKey[]>("attested-keys.json")) ?? [];
  }

  async highestHead(): Promise<AuditHead | undefined> {
    return this.#read<AuditHead>("head.json");
  }

  /** Refuses a head behind (or forked from) the highest seen; remembers it when it is higher. */
  async observeHead(head: AuditHead): Promise<void> {
    const seen = await this.highestHead();
    if (seen) checkHeadNotRolledBack(seen, head);
    if (!seen || head.seq > seen.seq) await this.#write("head.json", { seq: head.seq, hash: head.hash });
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

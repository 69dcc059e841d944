/**
 * The enclave's copy of the audit chain: the signing side (protocol/audit/log.ts) plus the
 * entries and per-seq hashes, so the enclave can serve GET /v1/audit, tell whether a head a party
 * saw is in its chain, and continue a chain a previous instance left (restore).
 */
import type { EnclaveKeys } from "../attestation/binding.js";
import type { Evidence, EvidencePolicy } from "../attestation/evidence.js";
import type { Platform } from "../attestation/result.js";
import {
  type AuditData,
  type AuditEntry,
  type AuditHead,
  type AuditKind,
  GENESIS_HASH,
} from "../protocol/audit/entry.js";
import { AuditError } from "../protocol/audit/errors.js";
import { type Attest, AuditLog } from "../protocol/audit/log.js";
import { verifyAuditLog } from "../protocol/audit/verify.js";
import { AuditRestoreError } from "./errors.js";

/** A restored chain may be long, but not unbounded. */
export const MAX_RESTORE_ENTRIES = 1_000_000;

/** What the chain needs of the instance: its signing key, its public keys, its evidence source. */
export interface ChainSigner {
  signingKey: CryptoKey;
  keys: EnclaveKeys;
  attest: Attest;
}

export class AuditChain {
  #log!: AuditLog;
  #jws: string[] = [];
  #entries: AuditEntry[] = [];
  /** hashes[seq] is the hash of entry seq; hashes[0] the genesis value. */
  #hashes: string[] = [GENESIS_HASH];
  /** How many entries came from a previous instance (0 until a restore). */
  #restored = 0;
  #evidence!: Evidence;

  private constructor(
    private readonly signer: ChainSigner,
    private readonly clock: () => Date,
  ) {}

  /** A new chain whose first entry is this instance's "enclave-started", with fresh evidence. */
  static async open(signer: ChainSigner, clock: () => Date): Promise<AuditChain> {
    const chain = new AuditChain(signer, clock);
    chain.#adopt(await chain.#start());
    return chain;
  }

  get head(): AuditHead {
    return this.#log.head;
  }

  /** The number of entries restored from a previous instance (0 when none were). */
  get restoredSeq(): number {
    return this.#restored;
  }

  /** This instance's evidence as its current "enclave-started" entry carries it. */
  get ownEvidence(): Evidence {
    return this.#evidence;
  }

  /** Entries (compact JWS) from `from` (1-based seq) to the head. */
  since(from: number): string[] {
    return this.#jws.slice(Math.max(from, 1) - 1);
  }

  /** Parsed entries, oldest first. */
  get entries(): readonly AuditEntry[] {
    return this.#entries;
  }

  /** True when `head` is a point of this chain (same seq, same hash). */
  contains(head: AuditHead): boolean {
    return head.seq <= this.#jws.length && this.#hashes[head.seq] === head.hash;
  }

  /**
   * True when `head` is a point of the restored part of this chain (1 <= seq <= restoredSeq): a
   * party that presents it shows that the log given to this instance holds everything it saw
   * before the restart. A head of this instance's own part shows nothing about the restored one.
   */
  vouchesForRestore(head: AuditHead): boolean {
    return head.seq >= 1 && head.seq <= this.#restored && this.contains(head);
  }

  async append<K extends Exclude<AuditKind, "enclave-started">>(
    kind: K,
    data: AuditData[K],
  ): Promise<AuditHead> {
    const appended = await this.#log.append(kind, data);
    this.#record(appended.jws, appended.entry, appended.head);
    return appended.head;
  }

  /**
   * Replaces this chain with `entries` (a previous instance's log, from the host) continued by a
   * new "enclave-started" entry with fresh evidence for that position. Every entry is verified
   * first as a party would (protocol/audit/verify.ts): links, order, canonical form, each
   * segment's evidence under `policy` (this instance's own platform, measurement and roots), its
   * keys, and every signature. Refused with AuditRestoreError naming the first failing entry;
   * then nothing is changed.
   */
  async restore(entries: readonly string[], policy: EvidencePolicy, platform: Platform): Promise<AuditHead> {
    if (entries.length > MAX_RESTORE_ENTRIES) {
      throw new AuditRestoreError(MAX_RESTORE_ENTRIES + 1, "too many entries");
    }
    const verified = await verifyAuditLog(entries, policy, { platform }).catch((e: unknown) => {
      if (e instanceof AuditError) throw new AuditRestoreError(e.seq, e.reason);
      throw e;
    });
    const started = await this.#start(verified.head);
    this.#jws = [...entries];
    this.#entries = verified.entries;
    this.#hashes = verified.hashes;
    this.#restored = entries.length;
    this.#adopt(started);
    return this.head;
  }

  #start(head?: AuditHead): ReturnType<typeof AuditLog.start> {
    return AuditLog.start({
      signingKey: this.signer.signingKey,
      keys: this.signer.keys,
      attest: this.signer.attest,
      clock: this.clock,
      ...(head ? { head } : {}),
    });
  }

  #adopt({ log, started, evidence }: Awaited<ReturnType<typeof AuditLog.start>>): void {
    this.#log = log;
    this.#evidence = evidence;
    this.#record(started.jws, started.entry, started.head);
  }

  #record(jws: string, entry: AuditEntry, head: AuditHead): void {
    this.#jws[entry.seq - 1] = jws;
    this.#entries[entry.seq - 1] = entry;
    this.#hashes[head.seq] = head.hash;
  }
}

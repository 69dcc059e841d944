/**
 * The enclave's copy of the audit chain: the signing side (protocol/audit/log.ts) plus the
 * entries and per-seq hashes, so the enclave can serve GET /v1/audit, tell whether a head a party
 * saw is in its chain, and continue a chain a previous instance left (restore).
 */
import { base64url } from "jose";
import {
  type AuditData,
  type AuditEntry,
  type AuditHead,
  type AuditKind,
  GENESIS_HASH,
} from "../protocol/audit/entry.js";
import { AuditError } from "../protocol/audit/errors.js";
import { AuditLog } from "../protocol/audit/log.js";
import { walkAuditChain } from "../protocol/audit/verify.js";
import type { EnclaveKeyring } from "./keys.js";

/** A restored chain may be long, but not unbounded. */
export const MAX_RESTORE_ENTRIES = 1_000_000;

export class AuditChain {
  #log!: AuditLog;
  #jws: string[] = [];
  #entries: AuditEntry[] = [];
  /** hashes[seq] is the hash of entry seq; hashes[0] the genesis value. */
  #hashes: string[] = [GENESIS_HASH];

  private constructor(
    private readonly keys: EnclaveKeyring,
    private readonly clock: () => Date,
  ) {}

  /** A new chain whose first entry is this instance's "enclave-started". */
  static async open(keys: EnclaveKeyring, clock: () => Date): Promise<AuditChain> {
    const chain = new AuditChain(keys, clock);
    await chain.#start();
    return chain;
  }

  get head(): AuditHead {
    return this.#log.head;
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
   * new "enclave-started" entry. Links, order, canonical form and which key wrote which segment
   * are checked here; signatures need the attested keys of old instances, which only the
   * parties hold, so they check them with verifyAuditLog.
   */
  async restore(entries: readonly string[]): Promise<AuditHead> {
    if (entries.length > MAX_RESTORE_ENTRIES)
      throw new AuditError(MAX_RESTORE_ENTRIES + 1, "too many entries");
    const { entries: parsed, hashes } = await walkAuditChain(entries, async (jws, _kid, seq) => {
      try {
        return base64url.decode(jws.split(".")[1]!);
      } catch {
        throw new AuditError(seq, "malformed entry");
      }
    });
    this.#jws = [...entries];
    this.#entries = parsed;
    this.#hashes = hashes;
    await this.#start({ seq: parsed.length, hash: hashes[parsed.length]! });
    return this.head;
  }

  async #start(head?: AuditHead): Promise<void> {
    const { log, started } = await AuditLog.start({
      signingKey: this.keys.signingKey,
      publicJwk: this.keys.publicKeys.signingKey,
      keysDigest: this.keys.keysDigest,
      clock: this.clock,
      ...(head ? { head } : {}),
    });
    this.#log = log;
    this.#record(started.jws, started.entry, started.head);
  }

  #record(jws: string, entry: AuditEntry, head: AuditHead): void {
    this.#jws[entry.seq - 1] = jws;
    this.#entries[entry.seq - 1] = entry;
    this.#hashes[head.seq] = head.hash;
  }
}

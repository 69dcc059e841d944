/**
 * The enclave's side of the audit log: builds, hashes and signs entries in order. Entries are
 * handed to the host to store; the log itself keeps only the head.
 */
import { calculateJwkThumbprint } from "jose";
import { UsageError } from "../../attestation/errors.js";
import { canonicalBytes } from "../contract/digest.js";
import { signCompact } from "../jose/lib/jws.js";
import {
  AUDIT_TYP,
  type AuditData,
  type AuditEntry,
  type AuditHead,
  type AuditKind,
  entryHash,
  GENESIS_HASH,
  isAuditEntry,
} from "./entry.js";

export interface Appended<K extends AuditKind = AuditKind> {
  /** The stored form: compact JWS over the entry's canonical bytes. */
  jws: string;
  entry: AuditEntry<K>;
  head: AuditHead;
}

export interface StartOptions {
  /** The enclave's ES256 private signing key (attested). */
  signingKey: CryptoKey;
  /** Its public JWK; the kid of every entry is this key's RFC 7638 SHA-256 thumbprint. */
  publicJwk: JsonWebKey;
  /** Hex digest of the enclave's public keys, as bound in its attestation evidence. */
  keysDigest: string;
  /** Head of the log a previous enclave instance left (from the host); empty log by default. */
  head?: AuditHead;
  clock?: () => Date;
}

export class AuditLog {
  #head: AuditHead;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #signingKey: CryptoKey;
  readonly #kid: string;
  readonly #clock: () => Date;

  private constructor(signingKey: CryptoKey, kid: string, head: AuditHead, clock: () => Date) {
    this.#signingKey = signingKey;
    this.#kid = kid;
    this.#head = head;
    this.#clock = clock;
  }

  /**
   * Open the log for a new enclave instance: continues from `head` and appends the
   * "enclave-started" entry, signed by the new key, that introduces that key to verifiers.
   */
  static async start(
    options: StartOptions,
  ): Promise<{ log: AuditLog; started: Appended<"enclave-started"> }> {
    const head = options.head ?? { seq: 0, hash: GENESIS_HASH };
    if (!Number.isSafeInteger(head.seq) || head.seq < 0 || !/^[0-9a-f]{64}$/.test(head.hash)) {
      throw new UsageError("malformed audit head");
    }
    const kid = await calculateJwkThumbprint(options.publicJwk, "sha256");
    const log = new AuditLog(options.signingKey, kid, head, options.clock ?? (() => new Date()));
    const started = await log.#append("enclave-started", { signingKey: kid, keysDigest: options.keysDigest });
    return { log, started };
  }

  get head(): AuditHead {
    return { ...this.#head };
  }

  /** Append one entry; concurrent calls are serialised so seq and prev stay consistent. */
  append<K extends Exclude<AuditKind, "enclave-started">>(kind: K, data: AuditData[K]): Promise<Appended<K>> {
    return this.#append(kind, data);
  }

  #append<K extends AuditKind>(kind: K, data: AuditData[K]): Promise<Appended<K>> {
    const run = this.#queue.then(async () => {
      const entry: AuditEntry<K> = {
        seq: this.#head.seq + 1,
        prev: this.#head.hash,
        time: this.#clock().toISOString(),
        kind,
        data,
      };
      // Refuse to sign what a verifier would reject, rather than poison the chain.
      if (!isAuditEntry(entry)) throw new UsageError("malformed audit entry data");
      const bytes = canonicalBytes(entry);
      const jws = await signCompact(
        bytes,
        { alg: "ES256", typ: AUDIT_TYP, kid: this.#kid },
        this.#signingKey,
      );
      this.#head = { seq: entry.seq, hash: await entryHash(bytes) };
      return { jws, entry, head: this.head };
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

/**
 * The enclave's side of the audit log: builds, hashes and signs entries in order. Entries are
 * handed to the host to store; the log itself keeps only the head.
 */
import { calculateJwkThumbprint } from "jose";
import { bindingData, type EnclaveKeys, keysDigest } from "../../attestation/binding.js";
import { fromHex, toBase64, toHex } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import type { Evidence, SnpCertificates } from "../../attestation/evidence.js";
import { certsFromTable, parseCertTable } from "../../attestation/snp/certtable.js";
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
  type InstanceEvidence,
  isAuditEntry,
} from "./entry.js";

export interface Appended<K extends AuditKind = AuditKind> {
  /** The stored form: compact JWS over the entry's canonical bytes. */
  jws: string;
  entry: AuditEntry<K>;
  head: AuditHead;
}

/**
 * Platform evidence whose SEV-SNP REPORT_DATA or Nitro user_data is `reportData` (Nitro also
 * carries `nonce`): an evidence provider's getEvidence (enclave/platform/provider.ts).
 */
export type Attest = (reportData: Uint8Array, nonce: Uint8Array) => Promise<Evidence>;

export interface StartOptions {
  /** The enclave's ES256 private signing key. */
  signingKey: CryptoKey;
  /**
   * The instance's public keys; the kid of every entry is the signing key's RFC 7638 SHA-256
   * thumbprint, and the "enclave-started" entry carries them with their digest.
   */
  keys: EnclaveKeys;
  /** Evidence over the keys for the new entry's position (see `AuditLog.start`). */
  attest: Attest;
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
   * "enclave-started" entry, signed by the new key, that introduces that key to verifiers. The
   * entry carries the public keys and evidence over them whose report data is bindingData(keys,
   * no contract, nonce = the 32 bytes of `head.hash`, the new entry's `prev`): evidence bound to
   * this position of this chain. Returns the raw evidence too (the instance's own, as obtained).
   */
  static async start(
    options: StartOptions,
  ): Promise<{ log: AuditLog; started: Appended<"enclave-started">; evidence: Evidence }> {
    const head = options.head ?? { seq: 0, hash: GENESIS_HASH };
    if (!Number.isSafeInteger(head.seq) || head.seq < 0 || !/^[0-9a-f]{64}$/.test(head.hash)) {
      throw new UsageError("malformed audit head");
    }
    const { kty, crv, x, y } = options.keys.signingKey;
    const keys = { signingKey: { kty, crv, x, y }, ageRecipient: options.keys.ageRecipient };
    const kid = await calculateJwkThumbprint(keys.signingKey, "sha256");
    const nonce = fromHex(head.hash);
    const reportData = await bindingData({ keys, contractDigest: null, nonce });
    const evidence = await options.attest(reportData, nonce);
    const log = new AuditLog(options.signingKey, kid, head, options.clock ?? (() => new Date()));
    const started = await log.#append("enclave-started", {
      signingKey: kid,
      keysDigest: toHex(await keysDigest(keys)),
      keys: keys as AuditEntry<"enclave-started">["data"]["keys"],
      evidence: instanceEvidence(evidence),
    });
    return { log, started, evidence };
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

/**
 * Evidence as an "enclave-started" entry carries it: base64 as in an evidence bundle, with an
 * SEV-SNP certificate table reduced to the endorsement key and its intermediate. The ARK is left
 * out: a verifier trusts only its own pinned (or configured simulated) roots, never one the
 * evidence brings.
 */
function instanceEvidence(e: Evidence): InstanceEvidence {
  const out: InstanceEvidence = { platform: e.platform, evidence: toBase64(e.evidence) };
  let certs: SnpCertificates = e.certificates ?? {};
  if (e.platform === "sev-snp") {
    const table = certs.certTable ? certsFromTable(parseCertTable(certs.certTable)) : {};
    const vcek = certs.vcek ?? table.vcek ?? table.vlek;
    const ask = certs.ask ?? table.ask;
    certs = { ...(vcek ? { vcek } : {}), ...(ask ? { ask } : {}) };
  }
  const encoded: NonNullable<InstanceEvidence["certificates"]> = {};
  for (const [k, v] of Object.entries(certs)) if (v) encoded[k as keyof SnpCertificates] = toBase64(v);
  if (Object.keys(encoded).length) out.certificates = encoded;
  return out;
}

/**
 * Offline verification of the whole audit log.
 *
 * Trust in signing keys comes only from attestation, and the log carries it: each instance's
 * segment opens with an "enclave-started" entry that holds the instance's public keys and its
 * platform evidence over them (report data = bindingData(keys, no contract, nonce = the entry's
 * `prev`)). The verifier checks that evidence under its own policy (roots, measurement, TCB,
 * CRLs), with certificates taken at the entry's time, and that the keys hash to `keysDigest` and
 * the signing key to the thumbprint the entry names and its header's kid. Every entry of the
 * segment, the opening one included, must then verify under that key. So a party trusts an old
 * instance through the instance's own evidence, without ever having talked to it, and evidence
 * cannot be moved to another chain or another position: its nonce is the hash it follows.
 */
import { base64url, calculateJwkThumbprint } from "jose";
import { keysDigest } from "../../attestation/binding.js";
import { fromHex, toHex } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import {
  type EvidenceBundle,
  type EvidencePolicy,
  verifyEvidenceBundle,
} from "../../attestation/evidence.js";
import type { Platform } from "../../attestation/result.js";
import { importVerifyKey, readHeader, verifyCompact } from "../jose/lib/jws.js";
import {
  AUDIT_TYP,
  type AuditEntry,
  type AuditHead,
  entryHash,
  GENESIS_HASH,
  parseEntryPayload,
} from "./entry.js";
import { AuditError } from "./errors.js";

export interface VerifyAuditOptions {
  /**
   * Heads the verifier saw (its own last head, the heads of signed responses it holds): each must
   * be a point of the log, unchanged, or the log was truncated or forked.
   */
  heads?: readonly AuditHead[];
  /** Every instance must run on this platform (a restarted enclave: its own). */
  platform?: Platform;
}

export interface VerifiedAuditLog {
  entries: AuditEntry[];
  head: AuditHead;
}

/** A verified log with what a restarted enclave keeps: hashes[seq] (hashes[0] is the genesis value). */
export interface VerifiedAuditChain extends VerifiedAuditLog {
  hashes: string[];
}

/**
 * Verifies `entries` (compact JWS, seq 1 first) under `policy`, the same evidence policy the
 * verifier attests live enclaves with. Throws AuditError naming the first failing entry (or the
 * seen head the log does not contain); a policy that cannot be enforced is a PolicyConfigError.
 */
export async function verifyAuditLog(
  entries: readonly string[],
  policy: EvidencePolicy,
  options: VerifyAuditOptions = {},
): Promise<VerifiedAuditChain> {
  const hashes = [GENESIS_HASH];
  const out: AuditEntry[] = [];
  let current: { kid: string; key: CryptoKey } | undefined;
  for (const [i, jws] of entries.entries()) {
    const seq = i + 1;
    const header = readHeader(jws, AUDIT_TYP, true);
    if (!header?.kid) throw new AuditError(seq, "not an audit entry");
    const entry = parseEntryPayload(unverifiedPayload(jws));
    if (!entry) throw new AuditError(seq, "malformed entry");
    if (entry.seq !== seq) throw new AuditError(seq, "sequence gap or reordering");
    if (entry.prev !== hashes[i]) throw new AuditError(seq, "does not link to the previous entry");
    if (entry.kind === "enclave-started") {
      current = await instanceKey(entry as AuditEntry<"enclave-started">, header.kid, policy, options);
    } else if (header.kid !== current?.kid) {
      throw new AuditError(seq, "signed by a key other than the running enclave's");
    }
    const payload = await verifyCompact(jws, current.key);
    if (!payload) throw new AuditError(seq, "signature does not verify");
    hashes.push(await entryHash(payload));
    out.push(entry);
  }
  const log = { entries: out, head: { seq: out.length, hash: hashes[out.length]! }, hashes };
  requireHeads(log, options.heads ?? []);
  return log;
}

/** Throws AuditError (the head's seq) unless every one of `heads` is a point of the verified log. */
export function requireHeads(log: VerifiedAuditChain, heads: readonly AuditHead[]): void {
  for (const seen of heads) {
    if (seen.seq > log.head.seq) throw new AuditError(seen.seq, "log is behind a head seen before");
    if (log.hashes[seen.seq] !== seen.hash)
      throw new AuditError(seen.seq, "log differs from a head seen before");
  }
}

/** The payload bytes as sent; only trusted once the signature over them verifies. */
function unverifiedPayload(jws: string): Uint8Array {
  return base64url.decode(jws.split(".")[1]!);
}

/**
 * The key an "enclave-started" entry introduces, once its evidence verifies under `policy` at the
 * entry's time and binds its keys at this position (nonce = `prev`).
 */
async function instanceKey(
  entry: AuditEntry<"enclave-started">,
  kid: string,
  policy: EvidencePolicy,
  options: VerifyAuditOptions,
): Promise<{ kid: string; key: CryptoKey }> {
  const { seq, data } = entry;
  if (data.signingKey !== kid || (await calculateJwkThumbprint(data.keys.signingKey, "sha256")) !== kid) {
    throw new AuditError(seq, "enclave-started entry not signed by the key it introduces");
  }
  if (toHex(await keysDigest(data.keys)) !== data.keysDigest) {
    throw new AuditError(seq, "keys digest does not match the instance keys");
  }
  if (options.platform !== undefined && data.evidence.platform !== options.platform) {
    throw new AuditError(seq, "instance evidence is from another platform");
  }
  const nonce = fromHex(entry.prev);
  const bundle: EvidenceBundle = {
    ...data.evidence,
    keys: data.keys,
    contractDigest: null,
    nonce: entry.prev,
  };
  const result = await verifyEvidenceBundle(
    bundle,
    { nonce, contractDigest: null },
    { ...policy, at: new Date(entry.time) },
  ).catch((e: unknown) => {
    // Only a policy that cannot be enforced throws; it is the verifier's problem, not the log's.
    if (e instanceof UsageError) throw e;
    throw new AuditError(seq, "instance evidence cannot be verified");
  });
  if (!result.verified) {
    throw new AuditError(seq, `instance evidence refused (${result.errors[0]?.code ?? "ERR_POLICY"})`);
  }
  return { kid, key: await importVerifyKey(data.keys.signingKey) };
}

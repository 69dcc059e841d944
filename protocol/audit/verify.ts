/**
 * Offline verification of the whole audit log.
 *
 * Trust in signing keys comes only from attestation: the caller passes the public keys whose
 * attestation evidence it verified (each bound in a report's keys digest). An entry's kid is the
 * RFC 7638 thumbprint of its signing key and must be one of them. A key's segment of the log
 * opens with an "enclave-started" entry signed by that key and naming its thumbprint; every
 * following entry until the next "enclave-started" must be signed by the same key.
 */
import { calculateJwkThumbprint } from "jose";
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
  /** A head the caller saw earlier (e.g. in a response); the log must contain it unchanged. */
  expectedHead?: AuditHead;
}

export interface VerifiedAuditLog {
  entries: AuditEntry[];
  head: AuditHead;
}

export async function verifyAuditLog(
  entries: readonly string[],
  attestedSigningKeys: readonly JsonWebKey[],
  options: VerifyAuditOptions = {},
): Promise<VerifiedAuditLog> {
  const keys = new Map<string, CryptoKey>();
  for (const jwk of attestedSigningKeys) {
    keys.set(await calculateJwkThumbprint(jwk, "sha256"), await importVerifyKey(jwk));
  }
  const { entries: out, hashes } = await walkAuditChain(entries, async (jws, kid, seq) => {
    const key = keys.get(kid);
    if (!key) throw new AuditError(seq, "signed by a key without verified attestation");
    const payload = await verifyCompact(jws, key);
    if (!payload) throw new AuditError(seq, "signature does not verify");
    return payload;
  });
  const head = { seq: out.length, hash: hashes[out.length]! };
  const expected = options.expectedHead;
  if (expected) {
    if (expected.seq > head.seq) throw new AuditError(expected.seq, "log is behind a head seen before");
    if (hashes[expected.seq] !== expected.hash)
      throw new AuditError(expected.seq, "log differs from a head seen before");
  }
  return { entries: out, head };
}

/**
 * Walks a chain in order: each entry's header, payload (obtained by `payloadOf`, which may or may
 * not check the signature), sequence, link to the previous hash, and which key wrote which
 * segment. Returns the parsed entries and hashes[seq] (hashes[0] is the genesis value).
 */
export async function walkAuditChain(
  entries: readonly string[],
  payloadOf: (jws: string, kid: string, seq: number) => Promise<Uint8Array>,
): Promise<{ entries: AuditEntry[]; hashes: string[] }> {
  const hashes = [GENESIS_HASH];
  const out: AuditEntry[] = [];
  let currentKid: string | undefined;
  for (const [i, jws] of entries.entries()) {
    const seq = i + 1;
    const header = readHeader(jws, AUDIT_TYP, true);
    if (!header?.kid) throw new AuditError(seq, "not an audit entry");
    const payload = await payloadOf(jws, header.kid, seq);
    const entry = parseEntryPayload(payload);
    if (!entry) throw new AuditError(seq, "malformed entry");
    if (entry.seq !== seq) throw new AuditError(seq, "sequence gap or reordering");
    if (entry.prev !== hashes[i]) throw new AuditError(seq, "does not link to the previous entry");
    if (entry.kind === "enclave-started") {
      if ((entry as AuditEntry<"enclave-started">).data.signingKey !== header.kid) {
        throw new AuditError(seq, "enclave-started entry not signed by the key it introduces");
      }
      currentKid = header.kid;
    } else if (header.kid !== currentKid) {
      throw new AuditError(seq, "signed by a key other than the running enclave's");
    }
    hashes.push(await entryHash(payload));
    out.push(entry);
  }
  return { entries: out, hashes };
}

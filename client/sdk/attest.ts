/**
 * Fetch the enclave's evidence for a fresh nonce and verify it (hardware chain, measurement,
 * policy, and the binding of its keys, the contract and the nonce). Only keys returned from a
 * verified attestation may be used to encrypt to the enclave or to verify what it signed.
 */
import type { EnclaveKeys } from "../../attestation/binding.js";
import { sha256, toBase64, toHex } from "../../attestation/bytes.js";
import type { EvidenceBundle, EvidencePolicy } from "../../attestation/evidence.js";
import { verifyEvidenceBundle } from "../../attestation/evidence.js";
import type { VerificationResult } from "../../attestation/result.js";
import { canonicalBytes } from "../../protocol/contract/digest.js";
import { AttestationRefusedError, HostResponseError } from "./errors.js";
import type { HostClient } from "./http.js";

export const ATTEST_NONCE_BYTES = 32;

export interface AttestOptions {
  policy: EvidencePolicy;
  /** Digest the enclave must hold (hex), or null for an enclave with no contract yet. */
  contractDigest: string | null;
}

export interface Attested {
  result: VerificationResult;
  keys: EnclaveKeys;
}

/** What `checkAttestation` saw: the verdict, and the evidence as fetched for offline checks. */
export interface AttestationCheck {
  result: VerificationResult;
  /** Present only when the evidence verified. */
  keys?: EnclaveKeys;
  bundle: EvidenceBundle;
  /** The nonce the evidence had to answer. */
  nonce: Uint8Array;
}

/** Verifies without throwing: the result says what passed and what failed. */
export async function checkAttestation(host: HostClient, options: AttestOptions): Promise<AttestationCheck> {
  const nonce = crypto.getRandomValues(new Uint8Array(ATTEST_NONCE_BYTES));
  const bundle = await host.getJson<EvidenceBundle>(`/evidence?nonce=${toHex(nonce)}`);
  if (!bundle || typeof bundle !== "object" || !bundle.keys || typeof bundle.keys !== "object") {
    throw new HostResponseError("evidence answer is not an evidence bundle");
  }
  const result = await verifyEvidenceBundle(
    bundle,
    { nonce, contractDigest: options.contractDigest },
    options.policy,
  );
  if (!result.verified) return { result, bundle, nonce };
  return {
    result,
    keys: { signingKey: bundle.keys.signingKey, ageRecipient: bundle.keys.ageRecipient },
    bundle,
    nonce,
  };
}

/** Throws AttestationRefusedError (carrying the result) unless the evidence verifies. */
export async function attest(host: HostClient, options: AttestOptions): Promise<Attested> {
  const a = await checkAttestation(host, options);
  if (!a.keys) throw new AttestationRefusedError(a.result);
  return { result: a.result, keys: a.keys };
}

/** A stable fingerprint of a policy, so a cached attestation is reused only under the same one. */
export async function policyFingerprint(policy: EvidencePolicy): Promise<string> {
  const roots = (policy.trustedSimRoots ?? []).map((r) => (typeof r === "string" ? r : toBase64(r)));
  const plain = {
    ...policy,
    at: policy.at?.toISOString(),
    trustedSimRoots: roots,
  };
  return toHex(await sha256(canonicalBytes(JSON.parse(JSON.stringify(plain, bigintSafe)))));
}

/** JSON for the values a policy may hold besides plain data: bytes as hex, bigints as text. */
function bigintSafe(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return toHex(value);
  return typeof value === "bigint" ? value.toString() : value;
}

export function sameKeys(a: EnclaveKeys, b: EnclaveKeys): boolean {
  return (
    a.ageRecipient === b.ageRecipient &&
    a.signingKey.kty === b.signingKey.kty &&
    a.signingKey.crv === b.signingKey.crv &&
    a.signingKey.x === b.signingKey.x &&
    a.signingKey.y === b.signingKey.y
  );
}

/**
 * One evidence type across platforms. The enclave publishes an EvidenceBundle; a verifier
 * checks it with `verifyEvidenceBundle`, which runs the platform's parse → verify → policy and
 * the key/contract/nonce binding, so callers branch on platform only in configuration.
 */
import { bindingData, type EnclaveKeys, MAX_NONCE_BYTES, MIN_NONCE_BYTES } from "./binding.js";
import { fromBase64, toBase64, toHex } from "./bytes.js";
import { EvidenceFormatError, isCleanroomError, PolicyConfigError, PolicyError } from "./errors.js";
import { looksLikeNitro, type NitroPolicyOptions, verifyNitro } from "./nitro/index.js";
import { certificatesFromInput } from "./pem.js";
import type { Platform, VerificationResult } from "./result.js";
import { type VerifySnpOptions, verifySnp } from "./snp/index.js";
import { REPORT_SIZE } from "./snp/report.js";

/** SEV-SNP certificates that travel with a report (base64 DER in the JSON form). */
export interface SnpCertificates {
  vcek?: Uint8Array;
  ask?: Uint8Array;
  ark?: Uint8Array;
  certTable?: Uint8Array;
}

/** Raw evidence as a provider returns it. */
export interface Evidence {
  platform: Platform;
  /** SEV-SNP: the 1184-byte report; Nitro: the COSE_Sign1 attestation document. */
  evidence: Uint8Array;
  certificates?: SnpCertificates;
}

/** The JSON document GET /v1/evidence returns. */
export interface EvidenceBundle {
  platform: Platform;
  evidence: string;
  certificates?: { vcek?: string; ask?: string; ark?: string; certTable?: string };
  keys: EnclaveKeys;
  contractDigest: string | null;
  nonce: string;
}

/** Expectations a verifier brings; each is configuration, never read from the evidence. */
export interface EvidencePolicy {
  /** Verification time (certificate validity); default now. */
  at?: Date;
  /** Simulated-platform roots (SEV-SNP ARK and/or Nitro root, DER or PEM) to trust. */
  trustedSimRoots?: (Uint8Array | string)[];
  allowDebug?: boolean;
  /** SEV-SNP launch measurements accepted (hex); required unless `allowAnyMeasurement`. */
  measurements?: string[];
  /**
   * Nitro PCRs by index (hex). Must pin PCR0, PCR1 and PCR2, or PCR8 with
   * `nitro.signingCertificateDigest`, unless `allowAnyMeasurement` (else PolicyConfigError).
   */
  pcrs?: Record<number, string>;
  /** Accept any image (development only): the binding and platform checks still run. */
  allowAnyMeasurement?: boolean;
  /**
   * SEV-SNP options; among them `minimumTcb` / `minimumTcbByProduct` (default: the shipped
   * DEFAULT_MINIMUM_TCB of the report's product) and `crls`.
   */
  snp?: Omit<VerifySnpOptions, "at" | "trustedArks">;
  nitro?: NitroPolicyOptions;
}

export function bundleEvidence(
  e: Evidence,
  keys: EnclaveKeys,
  contractDigest: string | null,
  nonce: Uint8Array,
): EvidenceBundle {
  const certs: EvidenceBundle["certificates"] = {};
  for (const [k, v] of Object.entries(e.certificates ?? {})) {
    if (v) certs[k as keyof SnpCertificates] = toBase64(v);
  }
  return {
    platform: e.platform,
    evidence: toBase64(e.evidence),
    ...(Object.keys(certs).length ? { certificates: certs } : {}),
    keys,
    contractDigest,
    nonce: toHex(nonce),
  };
}

function b64(s: unknown, what: string): Uint8Array {
  if (typeof s !== "string") throw new EvidenceFormatError(`bundle: ${what} missing`);
  try {
    return fromBase64(s);
  } catch {
    throw new EvidenceFormatError(`bundle: ${what} is not base64`);
  }
}

/** Decodes an untrusted bundle's bytes; its keys and digests are checked by the binding. */
export function unbundleEvidence(bundle: EvidenceBundle): Evidence {
  if (bundle.platform !== "sev-snp" && bundle.platform !== "nitro") {
    throw new EvidenceFormatError("bundle: unknown platform");
  }
  const certificates: SnpCertificates = {};
  for (const k of ["vcek", "ask", "ark", "certTable"] as const) {
    const v = bundle.certificates?.[k];
    if (v !== undefined) certificates[k] = b64(v, `certificates.${k}`);
  }
  return { platform: bundle.platform, evidence: b64(bundle.evidence, "evidence"), certificates };
}

/** Tells an SEV-SNP report from a Nitro document by content. */
export function detectPlatform(bytes: Uint8Array): Platform {
  if (bytes.length === REPORT_SIZE && bytes[1] === 0 && bytes[2] === 0 && bytes[3] === 0) return "sev-snp";
  if (looksLikeNitro(bytes)) return "nitro";
  throw new EvidenceFormatError("evidence: neither an SEV-SNP report nor a Nitro attestation document");
}

/** SEV-SNP needs an expected measurement; Nitro's image rule is checked by verifyNitro itself. */
function requireImage(p: EvidencePolicy, platform: Platform): void {
  if (p.allowAnyMeasurement || platform !== "sev-snp") return;
  if ((p.measurements?.length ?? 0) === 0)
    throw new PolicyConfigError("policy: no expected measurement given");
}

/**
 * Verifies raw evidence against a policy. `reportData`, when given, must equal SEV-SNP
 * REPORT_DATA or Nitro user_data exactly.
 */
export async function verifyEvidence(
  e: Evidence,
  policy: EvidencePolicy,
  reportData?: Uint8Array,
  nonce?: Uint8Array,
): Promise<VerificationResult> {
  requireImage(policy, e.platform);
  const roots = policy.trustedSimRoots ?? [];
  if (e.platform === "sev-snp") {
    return verifySnp(
      { report: e.evidence, ...e.certificates },
      {
        ...policy.snp,
        ...(policy.at ? { at: policy.at } : {}),
        trustedArks: roots,
        ...(policy.allowDebug ? { allowDebug: true } : {}),
        ...(policy.measurements ? { measurements: policy.measurements } : {}),
        ...(reportData ? { reportData } : {}),
      },
    );
  }
  return verifyNitro(e.evidence, {
    ...policy.nitro,
    ...(policy.at ? { at: policy.at } : {}),
    trustedRoots: roots.flatMap((r) => (typeof r === "string" ? certificatesFromInput(r) : [r])),
    ...(policy.allowDebug ? { allowDebug: true } : {}),
    ...(policy.allowAnyMeasurement ? { allowAnyImage: true } : {}),
    ...(policy.pcrs ? { pcrs: policy.pcrs } : {}),
    ...(reportData ? { userData: reportData } : {}),
    ...(nonce ? { nonce } : {}),
  });
}

/**
 * Verifies a bundle fetched for `nonce`, expecting the enclave to hold `contractDigest`
 * (null: an enclave that has not accepted a contract yet). The bundle's keys are trusted only
 * because the evidence's report data commits to them.
 */
export async function verifyEvidenceBundle(
  bundle: EvidenceBundle,
  expected: { nonce: Uint8Array; contractDigest: string | null },
  policy: EvidencePolicy,
): Promise<VerificationResult> {
  if (
    expected.nonce.length < MIN_NONCE_BYTES ||
    expected.nonce.length > MAX_NONCE_BYTES ||
    bundle.nonce !== toHex(expected.nonce)
  ) {
    return refused(bundle.platform, "nonce", new PolicyError("binding: evidence answers another nonce"));
  }
  if (bundle.contractDigest !== expected.contractDigest) {
    const why =
      bundle.contractDigest === null
        ? "binding: enclave holds no contract yet"
        : "binding: enclave holds another contract";
    return refused(bundle.platform, "contract", new PolicyError(why));
  }
  let evidence: Evidence;
  let reportData: Uint8Array;
  try {
    evidence = unbundleEvidence(bundle);
    if (!isPublishedKeys(bundle.keys))
      throw new EvidenceFormatError("bundle: keys are not an enclave's public keys");
    reportData = await bindingData({
      keys: bundle.keys,
      contractDigest: expected.contractDigest,
      nonce: expected.nonce,
    });
  } catch (e) {
    return refused(bundle.platform, "bundle format", e);
  }
  try {
    const result = await verifyEvidence(evidence, policy, reportData, expected.nonce);
    result.claims["enclaveKeys"] = bundle.keys;
    result.claims["contractDigest"] = bundle.contractDigest;
    return result;
  } catch (e) {
    return refused(bundle.platform, "policy", e);
  }
}

/**
 * Exactly the members an enclave publishes (enclave/keys.ts), so what the binding covers is all a
 * verified result carries: a bundle with any other member is refused, not passed on.
 */
function isPublishedKeys(k: unknown): k is EnclaveKeys {
  const exactly = (o: unknown, names: string[]): o is Record<string, unknown> =>
    typeof o === "object" &&
    o !== null &&
    !Array.isArray(o) &&
    Object.keys(o).sort().join() === [...names].sort().join();
  if (!exactly(k, ["signingKey", "ageRecipient"]) || typeof k.ageRecipient !== "string") return false;
  const j = k.signingKey;
  return (
    exactly(j, ["kty", "crv", "x", "y"]) &&
    j.kty === "EC" &&
    j.crv === "P-256" &&
    typeof j.x === "string" &&
    typeof j.y === "string"
  );
}

function refused(platform: Platform, name: string, e: unknown): VerificationResult {
  if (!isCleanroomError(e)) throw e;
  return {
    verified: false,
    platform,
    simulated: false,
    claims: {},
    checks: [{ name, ok: false, detail: e.code }],
    errors: [{ code: e.code, message: e.message }],
  };
}

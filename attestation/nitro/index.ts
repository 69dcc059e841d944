/**
 * AWS Nitro Enclaves attestation: parse → verify → policy. `verifyNitro` runs all three and
 * reports; the layer functions below it throw and let a caller stop after any layer.
 */
import { toHex } from "../bytes.js";
import { CleanroomError, PolicyError, SimulatedEvidenceError, UsageError } from "../errors.js";
import { type Check, errorEntry, type VerificationResult } from "../result.js";
import { runCheck } from "./checks.js";
import { decodeCoseSign1 } from "./cose.js";
import { decodeAttestationPayload, type NitroDocument } from "./document.js";
import {
  checkNitroPolicyConfig,
  evaluateNitroPolicy,
  isDebugDocument,
  type NitroPolicyOptions,
} from "./policy.js";
import { type NitroVerifyOptions, verifyNitroEvidence } from "./verify.js";

export {
  COSE_ALG_ES384,
  type CoseSign1,
  decodeCoseSign1,
  ES384_PROTECTED_HEADER,
  encodeCoseSign1,
  encodeSigStructure,
} from "./cose.js";
export { decodeAttestationPayload, encodeAttestationPayload, type NitroDocument } from "./document.js";
export { type ParsedNitro, parseNitro } from "./parse.js";
export {
  type BytesLike,
  checkNitroPolicy,
  checkNitroPolicyConfig,
  evaluateNitroPolicy,
  isDebugDocument,
  type NitroPolicyOptions,
  pcr8ForSigningCertificate,
} from "./policy.js";
export { AWS_NITRO_ROOT_G1_DER, AWS_NITRO_ROOT_G1_PEM } from "./roots.js";
export { type NitroVerified, type NitroVerifyOptions, verifyNitroEvidence } from "./verify.js";

export type NitroOptions = NitroVerifyOptions & NitroPolicyOptions;

/** Plain-JSON claims of a parsed document (not yet a statement that they are true). */
export function nitroClaims(doc: NitroDocument): Record<string, unknown> {
  const hexOrNull = (b: Uint8Array | null) => (b === null ? null : toHex(b));
  return {
    moduleId: doc.moduleId,
    timestamp: new Date(doc.timestamp).toISOString(),
    digest: doc.digest,
    pcrs: Object.fromEntries([...doc.pcrs].map(([i, v]) => [String(i), toHex(v)])),
    debug: isDebugDocument(doc),
    publicKey: hexOrNull(doc.publicKey),
    userData: hexOrNull(doc.userData),
    nonce: hexOrNull(doc.nonce),
  };
}

/**
 * Verifies one Nitro attestation document (raw COSE_Sign1 bytes) at `options.at` (default now)
 * and applies the policy. Never throws for evidence problems: they are in `errors` and the
 * failing entry of `checks`. Throws PolicyConfigError (a UsageError), before looking at the
 * document, for a policy that does not pin the image (see checkNitroPolicyConfig) or is malformed.
 */
export async function verifyNitro(
  document: Uint8Array,
  options: NitroOptions = {},
): Promise<VerificationResult> {
  await checkNitroPolicyConfig(options);
  const at = options.at ?? new Date();
  const checks: Check[] = [];
  const errors: { code: string; message: string }[] = [];
  let claims: Record<string, unknown> = {};
  let simulated = false;
  try {
    const cose = await runCheck(checks, "COSE_Sign1 format", () => decodeCoseSign1(document));
    const doc = await runCheck(checks, "payload format", () => decodeAttestationPayload(cose.payload));
    claims = nitroClaims(doc);
    ({ simulated } = await verifyNitroEvidence({ cose, document: doc }, { ...options, at }, checks));
    for (const check of await evaluateNitroPolicy(doc, options, at)) {
      checks.push(check);
      if (!check.ok) errors.push(errorEntry(new PolicyError(check.detail)));
    }
  } catch (e) {
    if (!(e instanceof CleanroomError) || e instanceof UsageError) throw e;
    simulated ||= e instanceof SimulatedEvidenceError;
    errors.push(errorEntry(e));
  }
  return { verified: errors.length === 0, platform: "nitro", simulated, claims, checks, errors };
}

/**
 * Cheap content sniff for `--platform auto`: a COSE_Sign1 is a CBOR array of 4 (0x84), maybe
 * behind tag 18 (0xd2), whose first element is a byte string (major type 2). An SEV-SNP report
 * starts with a little-endian version 2..5 instead.
 */
export function looksLikeNitro(bytes: Uint8Array): boolean {
  const start = bytes[0] === 0xd2 ? 1 : 0;
  const first = bytes[start + 1];
  return bytes.length > start + 2 && bytes[start] === 0x84 && first !== undefined && first >> 5 === 2;
}

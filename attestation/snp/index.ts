/**
 * SEV-SNP evidence, end to end: parse → verify → policy, reported as a VerificationResult.
 * verifySnp never throws for bad evidence; the lower layers are exported for callers that
 * want to stop after any of them.
 */
import { toHex } from "../bytes.js";
import { EvidenceFormatError, isCleanroomError } from "../errors.js";
import { type Check, errorEntry, type VerificationResult } from "../result.js";
import { certsFromTable, parseCertTable } from "./certtable.js";
import { checkSnpPolicyConfig, evaluateSnpPolicy, policyErrorFor, type SnpPolicyOptions } from "./policy.js";
import type { SnpProduct } from "./product.js";
import { chipIdFor, parseReport, type SnpReport } from "./report.js";
import { decodeTcb } from "./tcb.js";
import {
  type SnpChainInput,
  type SnpVerifyOptions,
  VERIFY_STEPS,
  type VerifyStep,
  verifyReportChain,
} from "./verify.js";

export { parseAmdExtensions, parseCertificate, toDer } from "./certs.js";
export { type CertTableEntry, certsFromTable, encodeCertTable, parseCertTable } from "./certtable.js";
export { type ParsedCrl, parseCrl } from "./crl.js";
export { unwrapAzureHclReport } from "./hcl.js";
export {
  checkSnpPolicy,
  checkSnpPolicyConfig,
  DEFAULT_MINIMUM_TCB,
  effectiveMinimumTcb,
  evaluateSnpPolicy,
  type MinimumTcbSetting,
  parseMinimumTcbSpecs,
  type SnpPolicyOptions,
} from "./policy.js";
export type { SnpProduct } from "./product.js";
export {
  encodePolicy,
  encodeReport,
  parseReport,
  placeSignature,
  type SnpReport,
  type SnpReportFields,
} from "./report.js";
export { decodeTcb, encodeTcb, type TcbVersion } from "./tcb.js";
export {
  clearChainCache,
  type SnpChainInput,
  type SnpVerifyOptions,
  verifyChain,
  verifyReportChain,
} from "./verify.js";

export interface SnpEvidence {
  report: Uint8Array;
  /** VCEK or VLEK, DER or PEM. */
  vcek?: Uint8Array;
  ask?: Uint8Array;
  ark?: Uint8Array;
  /** Extended-report certificate table; used when `vcek` is absent. */
  certTable?: Uint8Array;
}

export type VerifySnpOptions = SnpVerifyOptions & SnpPolicyOptions;

const u64hex = (v: bigint): string => `0x${v.toString(16).padStart(16, "0")}`;

/** Plain-JSON claims; TCBs are decoded once the product is known. */
export function snpClaims(r: SnpReport, product: SnpProduct | undefined): Record<string, unknown> {
  const tcb = (v: bigint): unknown =>
    product ? { raw: u64hex(v), ...decodeTcb(v, product) } : { raw: u64hex(v) };
  return {
    version: r.version,
    product: product ?? null,
    measurement: toHex(r.measurement),
    reportData: toHex(r.reportData),
    hostData: toHex(r.hostData),
    familyId: toHex(r.familyId),
    imageId: toHex(r.imageId),
    idKeyDigest: toHex(r.idKeyDigest),
    authorKeyDigest: toHex(r.authorKeyDigest),
    reportId: toHex(r.reportId),
    reportIdMa: toHex(r.reportIdMa),
    policy: { raw: u64hex(r.policy), ...r.policyFlags },
    vmpl: r.vmpl,
    guestSvn: r.guestSvn,
    currentTcb: tcb(r.currentTcb),
    reportedTcb: tcb(r.reportedTcb),
    committedTcb: tcb(r.committedTcb),
    launchTcb: tcb(r.launchTcb),
    chipId: toHex(product ? chipIdFor(r, product) : r.chipId),
    signingKey: r.signerInfo.signingKey,
    maskChipKey: r.signerInfo.maskChipKey,
    authorKeyEn: r.signerInfo.authorKeyEn,
    platformInfo: { raw: u64hex(r.platformInfo), ...r.platform },
    cpuid: r.cpuid ?? null,
    currentFirmware: r.currentVersion,
    committedFirmware: r.committedVersion,
  };
}

function chainInput(input: SnpEvidence): SnpChainInput {
  const table =
    input.vcek === undefined && input.certTable ? certsFromTable(parseCertTable(input.certTable)) : {};
  const vcek = input.vcek ?? table.vcek ?? table.vlek;
  if (vcek === undefined) throw new EvidenceFormatError("evidence: no VCEK or VLEK certificate");
  const out: SnpChainInput = { vcek };
  const ask = input.ask ?? table.ask;
  const ark = input.ark ?? table.ark;
  if (ask) out.ask = ask;
  if (ark) out.ark = ark;
  return out;
}

/**
 * Parse → verify → policy for one report. Never throws for bad evidence (it is in `errors` and
 * the failing check); throws PolicyConfigError, before looking at the evidence, for options that
 * cannot be enforced.
 */
export async function verifySnp(
  input: SnpEvidence,
  options: VerifySnpOptions = {},
): Promise<VerificationResult> {
  checkSnpPolicyConfig(options);
  const result: VerificationResult = {
    verified: false,
    platform: "sev-snp",
    simulated: false,
    claims: {},
    checks: [],
    errors: [],
  };
  const fail = (name: string, e: unknown): VerificationResult => {
    if (!isCleanroomError(e)) throw e;
    result.checks.push({ name, ok: false, detail: e.code });
    result.errors.push(errorEntry(e));
    return result;
  };

  let report: SnpReport;
  try {
    report = parseReport(input.report);
  } catch (e) {
    return fail("report format", e);
  }
  result.checks.push({ name: "report format", ok: true });
  // Claims are decoded once the product is settled; a failure below reports the CPUID view.
  const failVerify = (name: string, e: unknown): VerificationResult => {
    result.claims = snpClaims(report, report.product);
    return fail(name, e);
  };

  let certs: SnpChainInput;
  try {
    certs = chainInput(input);
  } catch (e) {
    return failVerify("certificates present", e);
  }

  const passed = new Set<VerifyStep>();
  let product: SnpProduct;
  try {
    const v = await verifyReportChain(report, certs, options, (step, detail) => {
      passed.add(step);
      result.checks.push(detail === undefined ? { name: step, ok: true } : { name: step, ok: true, detail });
    });
    product = v.product;
    result.simulated = v.simulated;
  } catch (e) {
    return failVerify(VERIFY_STEPS.find((s) => !passed.has(s)) ?? "verification", e);
  }
  result.claims = snpClaims(report, product);

  const policy: Check[] = await evaluateSnpPolicy(report, product, options);
  result.checks.push(...policy);
  for (const c of policy.filter((p) => !p.ok)) result.errors.push(errorEntry(policyErrorFor(c)));
  result.verified = result.errors.length === 0;
  return result;
}

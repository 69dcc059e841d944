/**
 * Policy layer: is a verified Nitro document acceptable? Expected PCRs, debug mode, the binding
 * of nonce / user_data / public_key, freshness and module id. Run only after verify.ts succeeded;
 * nothing here looks at signatures.
 *
 * A policy must pin the image: PCR0, PCR1 and PCR2 (image, kernel + boot ramdisk, application),
 * or PCR8 (the image's signing certificate) together with that certificate's SHA-384 digest
 * (`signingCertificateDigest`), which must agree with PCR8. Anything else (no PCRs, PCR0 alone,
 * only PCR3/PCR4) accepts images nobody reviewed and is refused as PolicyConfigError before any
 * verification, unless `allowAnyImage` says so explicitly (development only).
 */
import { bytesEqual, concatBytes, fromHex, isAllZero, sha384 } from "../bytes.js";
import { PolicyConfigError, PolicyError } from "../errors.js";
import type { Check } from "../result.js";
import type { NitroDocument } from "./document.js";

/** Bytes, or the same as a hex string. */
export type BytesLike = Uint8Array | string;

export interface NitroPolicyOptions {
  /** Expected PCR values by index (PCR0 image, 1 kernel, 2 application, 3 IAM role, 4 instance, 8 signer). */
  pcrs?: Readonly<Record<number, BytesLike>> | ReadonlyMap<number, BytesLike>;
  /**
   * SHA-384 of the DER of the certificate that signed the enclave image (48 bytes). Pins the
   * signer together with PCR8, which must equal SHA-384(48 zero bytes ‖ this digest).
   */
  signingCertificateDigest?: BytesLike;
  /** Accept a policy that pins no image (development only); the other checks still run. */
  allowAnyImage?: boolean;
  /** Accept debug enclaves (PCR0, PCR1 and PCR2 all zero), whose console the host can read. Default false. */
  allowDebug?: boolean;
  /** Exact expected values; a missing or null field in the document fails. */
  nonce?: BytesLike;
  userData?: BytesLike;
  publicKey?: BytesLike;
  /** Protocol-specific binding check (e.g. user_data commits to keys and contract). */
  binding?: (doc: NitroDocument) => boolean | Promise<boolean>;
  /** Maximum distance in ms between the document timestamp and the verification time, either way. */
  maxAgeMs?: number;
  moduleId?: RegExp;
}

/** PCR0..PCR2 all zero (or absent) is how NSM reports an enclave run with --debug-mode. */
export function isDebugDocument(doc: NitroDocument): boolean {
  return [0, 1, 2].every((i) => {
    const pcr = doc.pcrs.get(i);
    return pcr === undefined || isAllZero(pcr);
  });
}

function toBytes(v: BytesLike, option: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  try {
    return fromHex(v);
  } catch {
    throw new PolicyConfigError(`policy: ${option} is not valid hex`);
  }
}

const PCR_BYTES = 48;

function expectedPcrs(option: NitroPolicyOptions["pcrs"]): [number, Uint8Array][] {
  const entries: [string | number, BytesLike][] =
    option instanceof Map ? [...option] : Object.entries(option ?? {});
  return entries.map(([k, v]) => {
    const index = Number(k);
    if (!Number.isInteger(index) || index < 0 || index > 31)
      throw new PolicyConfigError("policy: PCR index not 0..31");
    const value = toBytes(v, "PCR value");
    if (value.length !== PCR_BYTES) throw new PolicyConfigError("policy: a PCR value is 48 bytes (SHA-384)");
    return [index, value];
  });
}

/** PCR8 of an image signed by the certificate whose DER has SHA-384 `digest`. */
export async function pcr8ForSigningCertificate(digest: Uint8Array): Promise<Uint8Array> {
  return sha384(concatBytes(new Uint8Array(PCR_BYTES), digest));
}

/**
 * Throws PolicyConfigError unless the options pin the image (PCR0+PCR1+PCR2, or PCR8 with the
 * signing-certificate digest it is derived from) or say `allowAnyImage`; also for malformed PCR
 * indexes or values. Run before verifying anything.
 */
export async function checkNitroPolicyConfig(options: NitroPolicyOptions): Promise<void> {
  const pinned = new Map(expectedPcrs(options.pcrs));
  let signerPinned = false;
  if (options.signingCertificateDigest !== undefined) {
    const digest = toBytes(options.signingCertificateDigest, "signing certificate digest");
    if (digest.length !== PCR_BYTES)
      throw new PolicyConfigError("policy: the signing certificate digest is 48 bytes (SHA-384)");
    const pcr8 = pinned.get(8);
    if (pcr8 === undefined)
      throw new PolicyConfigError("policy: a signing certificate digest needs PCR8 pinned with it");
    if (!bytesEqual(pcr8, await pcr8ForSigningCertificate(digest)))
      throw new PolicyConfigError("policy: PCR8 is not the PCR of that signing certificate");
    signerPinned = true;
  }
  if (options.allowAnyImage === true) return;
  const imagePinned = [0, 1, 2].every((i) => pinned.has(i));
  if (!imagePinned && !signerPinned) {
    throw new PolicyConfigError(
      "policy: a Nitro policy must pin PCR0, PCR1 and PCR2, or PCR8 with the signing certificate digest",
    );
  }
}

type Rule = { name: string; failure: string; test: () => boolean | Promise<boolean> };

function rules(doc: NitroDocument, options: NitroPolicyOptions, at: Date): Rule[] {
  const out: Rule[] = [
    {
      name: "debug mode off",
      failure: "policy: debug-mode enclave (PCR0, PCR1, PCR2 zero)",
      test: () => options.allowDebug === true || !isDebugDocument(doc),
    },
  ];
  for (const [index, value] of expectedPcrs(options.pcrs)) {
    out.push({
      name: `PCR${index}`,
      failure: `policy: PCR${index} does not match`,
      test: () => {
        const actual = doc.pcrs.get(index);
        return actual !== undefined && bytesEqual(actual, value);
      },
    });
  }
  const exact: ["nonce" | "userData" | "publicKey", string][] = [
    ["nonce", "nonce"],
    ["userData", "user data"],
    ["publicKey", "public key"],
  ];
  for (const [field, name] of exact) {
    const want = options[field];
    if (want === undefined) continue;
    const expected = toBytes(want, name);
    out.push({
      name,
      failure: `policy: ${name} does not match`,
      test: () => {
        const actual = doc[field];
        return actual !== null && bytesEqual(actual, expected);
      },
    });
  }
  const { binding, maxAgeMs, moduleId } = options;
  if (binding) {
    out.push({
      name: "binding",
      failure: "policy: binding check refused the document",
      test: () => binding(doc),
    });
  }
  if (maxAgeMs !== undefined) {
    if (!(maxAgeMs >= 0)) throw new PolicyConfigError("policy: maxAgeMs must be a non-negative number");
    out.push({
      name: "document age",
      failure: "policy: document timestamp too far from the verification time",
      test: () => Math.abs(at.getTime() - doc.timestamp) <= maxAgeMs,
    });
  }
  if (moduleId) {
    out.push({
      name: "module id",
      failure: "policy: module_id does not match",
      test: () => moduleId.test(doc.moduleId),
    });
  }
  return out;
}

/**
 * Evaluates every rule and reports each as a check (failures carry a fixed message in `detail`).
 * Throws only PolicyConfigError (a UsageError), for options that do not pin the image or are
 * malformed. A binding callback that throws counts as a refusal.
 */
export async function evaluateNitroPolicy(
  doc: NitroDocument,
  options: NitroPolicyOptions,
  at = new Date(),
): Promise<Check[]> {
  await checkNitroPolicyConfig(options);
  const checks: Check[] = [];
  for (const rule of rules(doc, options, at)) {
    let ok = false;
    try {
      ok = (await rule.test()) === true;
    } catch {
      ok = false;
    }
    checks.push(ok ? { name: rule.name, ok } : { name: rule.name, ok, detail: rule.failure });
  }
  return checks;
}

/** Throwing form for callers that stop at the first refusal: PolicyError with the failing rule's message. */
export async function checkNitroPolicy(
  doc: NitroDocument,
  options: NitroPolicyOptions,
  at = new Date(),
): Promise<void> {
  const failed = (await evaluateNitroPolicy(doc, options, at)).find((c) => !c.ok);
  if (failed) throw new PolicyError(failed.detail);
}

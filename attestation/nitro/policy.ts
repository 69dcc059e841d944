/**
 * Policy layer: is a verified Nitro document acceptable? Expected PCRs, debug mode, the binding
 * of nonce / user_data / public_key, freshness and module id. Run only after verify.ts succeeded;
 * nothing here looks at signatures.
 */
import { bytesEqual, fromHex, isAllZero } from "../bytes.js";
import { PolicyError, UsageError } from "../errors.js";
import type { Check } from "../result.js";
import type { NitroDocument } from "./document.js";

/** Bytes, or the same as a hex string. */
export type BytesLike = Uint8Array | string;

export interface NitroPolicyOptions {
  /** Expected PCR values by index (PCR0 image, 1 kernel, 2 application, 3 IAM role, 4 instance, 8 signer). */
  pcrs?: Readonly<Record<number, BytesLike>> | ReadonlyMap<number, BytesLike>;
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
    throw new UsageError(`policy: ${option} is not valid hex`);
  }
}

function expectedPcrs(option: NitroPolicyOptions["pcrs"]): [number, Uint8Array][] {
  const entries: [string | number, BytesLike][] =
    option instanceof Map ? [...option] : Object.entries(option ?? {});
  return entries.map(([k, v]) => {
    const index = Number(k);
    if (!Number.isInteger(index) || index < 0 || index > 31)
      throw new UsageError("policy: PCR index not 0..31");
    return [index, toBytes(v, "PCR value")];
  });
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
    if (!(maxAgeMs >= 0)) throw new UsageError("policy: maxAgeMs must be a non-negative number");
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
 * Throws only UsageError, for malformed options. A binding callback that throws counts as a refusal.
 */
export async function evaluateNitroPolicy(
  doc: NitroDocument,
  options: NitroPolicyOptions,
  at = new Date(),
): Promise<Check[]> {
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

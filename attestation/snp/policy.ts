/**
 * "Is this verified report acceptable?" Run only after verify.ts succeeded. Defaults are the
 * safe ones for a data clean room: debug refused, VMPL 0 only, migration agent refused.
 */
import { bytesEqual, fromHex } from "../bytes.js";
import { PolicyError } from "../errors.js";
import type { Check } from "../result.js";
import type { SnpProduct } from "./product.js";
import type { SnpGuestPolicy, SnpReport } from "./report.js";
import { decodeTcb, type TcbComponent, type TcbVersion } from "./tcb.js";

/** Guest policy flags a caller may require set or forbid (DEBUG and MIGRATE_MA have own options). */
export type SnpPolicyFlag =
  | "smt"
  | "singleSocket"
  | "cxlAllow"
  | "memAes256Xts"
  | "raplDis"
  | "ciphertextHiding"
  | "pageSwapDisable";

export interface SnpPolicyOptions {
  /** Accept DEBUG=1 (a debugger can read guest memory). Default false. */
  allowDebug?: boolean;
  /** Accepted launch measurements (48 bytes, or hex); any match. Unset: not checked. */
  measurements?: (Uint8Array | string)[];
  /** Exact expected REPORT_DATA (64 bytes). */
  reportData?: Uint8Array;
  /** Custom binding check on REPORT_DATA, e.g. a key-and-nonce digest. */
  reportDataBinding?: (reportData: Uint8Array) => boolean | Promise<boolean>;
  /** Exact expected HOST_DATA (32 bytes). */
  hostData?: Uint8Array;
  /** Per-component minimum of REPORTED_TCB (fmc only on Turin). */
  minimumTcb?: Partial<TcbVersion>;
  /** Highest accepted VMPL. Default 0. */
  maxVmpl?: number;
  minimumGuestSvn?: number;
  /** Accept a report from a guest with a migration agent. Default false. */
  allowMigrateMa?: boolean;
  requiredPolicyFlags?: SnpPolicyFlag[];
  forbiddenPolicyFlags?: SnpPolicyFlag[];
}

type Rule = (r: SnpReport, product: SnpProduct, o: SnpPolicyOptions) => Promise<Check | undefined>;

const check = (name: string, ok: boolean, detail?: string): Check =>
  detail === undefined ? { name, ok } : { name, ok, detail };

const asBytes = (m: Uint8Array | string): Uint8Array => (typeof m === "string" ? fromHex(m) : m);

const TCB_COMPONENTS: TcbComponent[] = ["fmc", "bl", "tee", "snp", "ucode"];

const RULES: Rule[] = [
  async (r, _p, o) => check("debug disabled", !r.policyFlags.debug || o.allowDebug === true),
  async (r, _p, o) => check("migration agent refused", !r.policyFlags.migrateMa || o.allowMigrateMa === true),
  async (r, _p, o) => check("vmpl", r.vmpl <= (o.maxVmpl ?? 0), `vmpl ${r.vmpl}`),
  async (r, _p, o) =>
    o.measurements === undefined
      ? undefined
      : check(
          "measurement",
          o.measurements.map(asBytes).some((m) => bytesEqual(m, r.measurement)),
        ),
  async (r, _p, o) =>
    o.reportData === undefined ? undefined : check("report data", bytesEqual(o.reportData, r.reportData)),
  async (r, _p, o) =>
    o.reportDataBinding === undefined
      ? undefined
      : check("report data binding", (await o.reportDataBinding(r.reportData.slice())) === true),
  async (r, _p, o) =>
    o.hostData === undefined ? undefined : check("host data", bytesEqual(o.hostData, r.hostData)),
  async (r, p, o) => {
    if (o.minimumTcb === undefined) return undefined;
    const tcb = decodeTcb(r.reportedTcb, p);
    const low = TCB_COMPONENTS.filter((c) => {
      const min = o.minimumTcb?.[c];
      if (min === undefined) return false;
      const have = tcb[c];
      return have === undefined || have < min;
    });
    return check("minimum TCB", low.length === 0, low.length ? `below: ${low.join(", ")}` : undefined);
  },
  async (r, _p, o) =>
    o.minimumGuestSvn === undefined ? undefined : check("minimum guest SVN", r.guestSvn >= o.minimumGuestSvn),
  async (r, _p, o) => {
    const flags = r.policyFlags as SnpGuestPolicy;
    const missing = (o.requiredPolicyFlags ?? []).filter((f) => !flags[f]);
    const present = (o.forbiddenPolicyFlags ?? []).filter((f) => flags[f]);
    if (!o.requiredPolicyFlags && !o.forbiddenPolicyFlags) return undefined;
    return check("policy flags", missing.length + present.length === 0);
  },
];

/** Every configured policy check, each ok or not; never throws for a failing check. */
export async function evaluateSnpPolicy(
  report: SnpReport,
  product: SnpProduct,
  options: SnpPolicyOptions = {},
): Promise<Check[]> {
  const out: Check[] = [];
  for (const rule of RULES) {
    const c = await rule(report, product, options);
    if (c) out.push(c);
  }
  return out;
}

/** Throws PolicyError naming the first failed check. */
export async function checkSnpPolicy(
  report: SnpReport,
  product: SnpProduct,
  options: SnpPolicyOptions = {},
): Promise<void> {
  const failed = (await evaluateSnpPolicy(report, product, options)).find((c) => !c.ok);
  if (failed) throw new PolicyError(`policy: ${failed.name} not satisfied`);
}

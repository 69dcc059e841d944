/**
 * "Is this verified report acceptable?" Run only after verify.ts succeeded. Defaults are the
 * safe ones for a data clean room: debug refused, VMPL 0 only, migration agent refused, and
 * REPORTED_TCB at least the shipped minimum of the report's product (DEFAULT_MINIMUM_TCB).
 */
import { bytesEqual, fromHex } from "../bytes.js";
import { PolicyConfigError, PolicyError, TcbError, UsageError } from "../errors.js";
import type { Check } from "../result.js";
import { SNP_PRODUCTS, type SnpProduct } from "./product.js";
import type { SnpGuestPolicy, SnpReport } from "./report.js";
import { decodeTcb, type TcbComponent, type TcbVersion } from "./tcb.js";

/**
 * The shipped minimum REPORTED_TCB per product: the fixed levels of AMD security bulletin
 * AMD-SB-3019 (CVE-2024-56161, microcode signature verification; fixed December 2024), as
 * independent SEV-SNP verifiers quote AMD's bulletin (AMD's page itself was not readable where
 * this was written; see docs/OPERATORS.md, "Verifier policy"):
 *
 * - Milan: SNP SPL 0x18 (24), microcode SPL 0xDB (219)
 * - Genoa: SNP SPL 0x17 (23), microcode SPL 0x54 (84)
 * - Turin: microcode SPL 0x47 (71); no SNP SPL is quoted for Turin, so 0
 *
 * Bootloader, TEE and (Turin) FMC are 0: that bulletin sets no floor for them. These are floors,
 * not the latest levels: later bulletins (AMD-SB-3020 raises the SNP SPL, AMD-SB-3027 the
 * microcode) call for higher values, which an operator sets with `--min-tcb`. Checked against the
 * real reports in shared/vectors: milan-oak-v3, milan-azure-v3 (snp 24, ucode 219), genoa-oak-v5
 * (snp 25, ucode 84) and turin-oak-v5 (snp 2, ucode 71) pass; the pre-fix reports (milan-virtee-v2,
 * milan-constellation-v2-idblock, milan-gosevguest-v2-debug, genoa-oak-v2-2024) and
 * milan-aws-vlek-v3 (REPORTED ucode 217) are refused.
 */
export const DEFAULT_MINIMUM_TCB: Readonly<Record<SnpProduct, Readonly<TcbVersion>>> = Object.freeze({
  Milan: Object.freeze({ bl: 0, tee: 0, snp: 24, ucode: 219 }),
  Genoa: Object.freeze({ bl: 0, tee: 0, snp: 23, ucode: 84 }),
  Turin: Object.freeze({ fmc: 0, bl: 0, tee: 0, snp: 0, ucode: 71 }),
});

/** Where the shipped minimums come from; shown in the "minimum TCB" check. */
export const DEFAULT_MINIMUM_TCB_SOURCE = "AMD-SB-3019";

/** A minimum per component (unnamed components are not checked), or "none": no TCB check. */
export type MinimumTcbSetting = Partial<TcbVersion> | "none";

/** Names of the TCB components in refusals and in `--min-tcb`. */
export const TCB_COMPONENT_NAMES: Readonly<Record<TcbComponent, string>> = Object.freeze({
  bl: "bootloader",
  tee: "tee",
  snp: "snp",
  ucode: "microcode",
  fmc: "fmc",
});

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
  /**
   * Minimum REPORTED_TCB for every product, replacing the default (fmc exists on Turin only, so
   * naming it refuses a Milan or Genoa report). `"none"` turns the check off. Takes precedence
   * over `minimumTcbByProduct`.
   */
  minimumTcb?: MinimumTcbSetting;
  /** Minimum REPORTED_TCB per product; a product not named keeps DEFAULT_MINIMUM_TCB. */
  minimumTcbByProduct?: Partial<Record<SnpProduct, MinimumTcbSetting>>;
  /** Highest accepted VMPL. Default 0. */
  maxVmpl?: number;
  minimumGuestSvn?: number;
  /** Accept a report from a guest with a migration agent. Default false. */
  allowMigrateMa?: boolean;
  requiredPolicyFlags?: SnpPolicyFlag[];
  forbiddenPolicyFlags?: SnpPolicyFlag[];
}

/** The name of the minimum-TCB check in results. */
export const TCB_CHECK = "minimum TCB";

type Rule = (r: SnpReport, product: SnpProduct, o: SnpPolicyOptions) => Promise<Check | undefined>;

const check = (name: string, ok: boolean, detail?: string): Check =>
  detail === undefined ? { name, ok } : { name, ok, detail };

const asBytes = (m: Uint8Array | string): Uint8Array => (typeof m === "string" ? fromHex(m) : m);

const TCB_COMPONENTS: TcbComponent[] = ["fmc", "bl", "tee", "snp", "ucode"];

/** The minimum that applies to a report of `product` under `o`, and where it came from. */
export function effectiveMinimumTcb(
  product: SnpProduct,
  o: Pick<SnpPolicyOptions, "minimumTcb" | "minimumTcbByProduct"> = {},
): { minimum: MinimumTcbSetting; source: "configured" | "default" } {
  const configured = o.minimumTcb ?? o.minimumTcbByProduct?.[product];
  if (configured !== undefined) return { minimum: configured, source: "configured" };
  return { minimum: DEFAULT_MINIMUM_TCB[product], source: "default" };
}

/** The components of REPORTED_TCB below `minimum` (a component the product lacks counts as below). */
export function tcbBelow(tcb: TcbVersion, minimum: Partial<TcbVersion>): TcbComponent[] {
  return TCB_COMPONENTS.filter((c) => {
    const min = minimum[c];
    if (min === undefined) return false;
    const have = tcb[c];
    return have === undefined || have < min;
  });
}

function checkSetting(s: unknown): void {
  if (s === undefined || s === "none") return;
  if (typeof s !== "object" || s === null) throw new PolicyConfigError("policy: minimum TCB is malformed");
  for (const [k, v] of Object.entries(s)) {
    if (!(TCB_COMPONENTS as string[]).includes(k))
      throw new PolicyConfigError("policy: minimum TCB names an unknown component");
    if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 255))
      throw new PolicyConfigError("policy: minimum TCB component not an integer 0..255");
  }
}

/** Throws PolicyConfigError for options that cannot be enforced as written; run before verifying. */
export function checkSnpPolicyConfig(o: SnpPolicyOptions): void {
  checkSetting(o.minimumTcb);
  for (const [p, s] of Object.entries(o.minimumTcbByProduct ?? {})) {
    if (!(SNP_PRODUCTS as string[]).includes(p))
      throw new PolicyConfigError("policy: minimum TCB for an unknown product");
    checkSetting(s);
  }
  if (o.maxVmpl !== undefined && !(Number.isInteger(o.maxVmpl) && o.maxVmpl >= 0 && o.maxVmpl <= 3))
    throw new PolicyConfigError("policy: maxVmpl must be 0..3");
}

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
    const { minimum, source } = effectiveMinimumTcb(p, o);
    if (minimum === "none") return check(TCB_CHECK, true, "not checked");
    const low = tcbBelow(decodeTcb(r.reportedTcb, p), minimum);
    if (low.length)
      return check(TCB_CHECK, false, `below: ${low.map((c) => TCB_COMPONENT_NAMES[c]).join(", ")}`);
    return check(
      TCB_CHECK,
      true,
      source === "default" ? `default (${DEFAULT_MINIMUM_TCB_SOURCE})` : "configured",
    );
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

/**
 * Every configured policy check, each ok or not; never throws for a failing check. Throws
 * PolicyConfigError for options that cannot be enforced (see checkSnpPolicyConfig).
 */
export async function evaluateSnpPolicy(
  report: SnpReport,
  product: SnpProduct,
  options: SnpPolicyOptions = {},
): Promise<Check[]> {
  checkSnpPolicyConfig(options);
  const out: Check[] = [];
  for (const rule of RULES) {
    const c = await rule(report, product, options);
    if (c) out.push(c);
  }
  return out;
}

/** The typed error for a failed check: TcbError for the TCB (naming the components), else PolicyError. */
export function policyErrorFor(c: Check): PolicyError {
  if (c.name === TCB_CHECK) {
    const components = c.detail?.replace(/^below: /, "") ?? "";
    return new TcbError(`policy: reported TCB below the minimum: ${components}`);
  }
  return new PolicyError(`policy: ${c.name} not satisfied`);
}

/** Throws the error of the first failed check (TcbError for the TCB, PolicyError otherwise). */
export async function checkSnpPolicy(
  report: SnpReport,
  product: SnpProduct,
  options: SnpPolicyOptions = {},
): Promise<void> {
  const failed = (await evaluateSnpPolicy(report, product, options)).find((c) => !c.ok);
  if (failed) throw policyErrorFor(failed);
}

const COMPONENT_ALIASES: Readonly<Record<string, TcbComponent>> = Object.freeze({
  bootloader: "bl",
  bl: "bl",
  tee: "tee",
  snp: "snp",
  microcode: "ucode",
  ucode: "ucode",
  fmc: "fmc",
});

function usage(message: string): never {
  throw new UsageError(`--min-tcb: ${message}`);
}

function splValue(v: string): number {
  let n: number;
  if (/^(0|[1-9][0-9]{0,2})$/.test(v)) n = Number(v);
  else if (/^0[xX][0-9a-fA-F]{1,2}$/.test(v)) n = Number.parseInt(v.slice(2), 16);
  else usage("a component value must be decimal 0..255 or 0x00..0xff");
  if (n > 255) usage("a component value must be decimal 0..255 or 0x00..0xff");
  return n;
}

/**
 * The per-product minimums that `--min-tcb` specs (applied in order, later wins per component)
 * make of the shipped defaults. A spec is `[PRODUCT:]BODY`, PRODUCT one of Milan, Genoa, Turin
 * (none: every product), BODY one of:
 *
 * - `none` (no TCB check) or `default` (the shipped DEFAULT_MINIMUM_TCB);
 * - `component=N[,component=N...]`: components `bootloader` (or `bl`), `tee`, `snp`,
 *   `microcode` (or `ucode`), `fmc` (Turin only; without a PRODUCT it applies to Turin alone);
 *   N decimal 0..255 or 0x00..0xff. Components not named keep their current minimum;
 * - with a PRODUCT only: the 16 hex digits of a TCB_VERSION as AMD's tools print it, the u64
 *   read big-endian (e.g. `Milan:db18000000000004` = bootloader 4, tee 0, snp 24, microcode 219),
 *   decoded in the product's layout; sets every component.
 */
export function parseMinimumTcbSpecs(specs: readonly string[]): Record<SnpProduct, MinimumTcbSetting> {
  const out = Object.fromEntries(SNP_PRODUCTS.map((p) => [p, { ...DEFAULT_MINIMUM_TCB[p] }])) as Record<
    SnpProduct,
    MinimumTcbSetting
  >;
  for (const spec of specs) {
    const m = /^(?:(Milan|Genoa|Turin):)?(.+)$/.exec(spec);
    if (!m) usage("expected [PRODUCT:]SPEC");
    const product = m[1] as SnpProduct | undefined;
    const body = m[2]!;
    const targets: SnpProduct[] = product ? [product] : [...SNP_PRODUCTS];
    if (body === "none" || body === "default") {
      for (const p of targets) out[p] = body === "none" ? "none" : { ...DEFAULT_MINIMUM_TCB[p] };
      continue;
    }
    if (/^(0[xX])?[0-9a-fA-F]{16}$/.test(body)) {
      if (!product) usage("a TCB_VERSION in hex needs a product, e.g. Milan:db18000000000004");
      out[product] = decodeTcb(BigInt(`0x${body.replace(/^0[xX]/, "")}`), product);
      continue;
    }
    const set: [TcbComponent, number][] = body.split(",").map((item) => {
      const kv = /^([a-z]+)=(.+)$/.exec(item);
      const component = kv ? COMPONENT_ALIASES[kv[1]!] : undefined;
      if (!kv || component === undefined)
        usage("expected component=N with component bootloader, tee, snp, microcode or fmc");
      return [component, splValue(kv[2]!)];
    });
    for (const p of targets) {
      const current = out[p];
      const next: Partial<TcbVersion> = current === "none" ? {} : { ...current };
      for (const [c, v] of set) {
        if (c === "fmc" && p !== "Turin") {
          if (product) usage("fmc exists on Turin only");
          continue;
        }
        next[c] = v;
      }
      out[p] = next;
    }
  }
  return out;
}

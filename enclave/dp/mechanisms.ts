/**
 * The noise mechanisms for aggregate outputs, on integers: each takes a true integer aggregate
 * (counts; sums of clamped fixed-point values) and returns it plus discrete Laplace noise of
 * scale sensitivity / epsilon, which is epsilon-DP for that aggregate (Canonne-Kamath-Steinke
 * 2020, Ghosh-Roughgarden-Sundararajan 2009). Sensitivities are L1 over the whole released
 * column, derived from the contract's DpParameters and how output rows arise (GroupKeys).
 */
import type { DpParameters } from "../../protocol/contract/types.js";
import { clampBound, clampRange, maxRowsPerIdentity } from "./contribution.js";
import { sampleDiscreteLaplace } from "./discrete.js";
import { DpPolicyError } from "./errors.js";
import type { Rng } from "./random.js";
import { noiseEpsilon, type Rational, rational, toNumber } from "./rational.js";

/** Aggregates that receive noise. "count" is COUNT(*), COUNT(col) or COUNT(DISTINCT non-identity). */
export type NoisedKind = "count" | "count-distinct" | "sum";

/**
 * How output rows arise. "single": no GROUP BY, one row. "public": the group keys are a fixed,
 * data-independent set (every key is output even when empty). "private": the keys come from the
 * data, so a row's presence is itself private and rows pass a noisy threshold.
 */
export type GroupKeys = "single" | "public" | "private";

/** Default delta when the contract declares none: the probability bound of the noisy threshold. */
export const DEFAULT_DELTA = 1e-9;

export function resolveDelta(delta: number | undefined): number {
  const d = delta ?? DEFAULT_DELTA;
  if (!Number.isFinite(d) || d <= 0 || d >= 1) throw new DpPolicyError("delta must be in (0, 1)");
  return d;
}

/**
 * L1 sensitivity of one aggregate column, in its own integer units (for sums: units of
 * 10^-places), when one identity is added or removed. With maxRowsPerIdentity = m, that identity
 * touches at most m rows, hence at most m groups (L0 <= m):
 *   count          m             (its rows, wherever they fall)
 *   count-distinct 1 ("single"), m (grouped: at most 1 in each of m groups)
 *   sum            m * max(|lower|, |upper|) of the clamp range
 */
export function sensitivity(kind: NoisedKind, policy: DpParameters, groups: GroupKeys, places = 0): bigint {
  if (kind === "count-distinct") return groups === "single" ? 1n : maxRowsPerIdentity(policy);
  const m = maxRowsPerIdentity(policy);
  if (kind === "count") return m;
  const bound = clampBound(clampRange(policy, places));
  // An all-zero range would release the sum unnoised; it is also certainly a mistake.
  if (bound === 0n) throw new DpPolicyError("policy: clamp range is zero");
  return m * bound;
}

/** The largest amount one identity adds to a single group's value (drives the threshold). */
export function perGroupContribution(kind: "count" | "count-distinct", policy: DpParameters): bigint {
  return kind === "count-distinct" ? 1n : maxRowsPerIdentity(policy);
}

/** Groups one identity can appear in when rows are grouped: one per row it keeps. */
export function maxGroupsOf(policy: DpParameters): bigint {
  return maxRowsPerIdentity(policy);
}

/** Discrete Laplace scale sensitivity / epsilon, exact. */
export function laplaceScale(sens: bigint, epsilon: Rational): Rational {
  if (sens <= 0n) throw new DpPolicyError("sensitivity must be positive");
  if (epsilon.num <= 0n) throw new DpPolicyError("epsilon must be positive");
  return rational(sens * epsilon.den, epsilon.num);
}

/** The integer value plus discrete Laplace(sensitivity / epsilon) noise: epsilon-DP. */
export function laplaceMechanism(value: bigint, sens: bigint, epsilon: Rational, rng: Rng): bigint {
  return value + sampleDiscreteLaplace(rng, laplaceScale(sens, epsilon));
}

/** Options shared by the single-aggregate helpers. */
export interface NoiseOptions {
  groups: GroupKeys;
  /** The share of the run's epsilon this aggregate may use; defaults to the whole policy.epsilon. */
  epsilon?: Rational;
}

const epsilonOf = (policy: DpParameters, options: NoiseOptions) =>
  options.epsilon ?? noiseEpsilon(policy.epsilon);

export function noisyCount(count: bigint, policy: DpParameters, rng: Rng, options: NoiseOptions): bigint {
  return laplaceMechanism(
    count,
    sensitivity("count", policy, options.groups),
    epsilonOf(policy, options),
    rng,
  );
}

/** COUNT(DISTINCT identity). */
export function noisyCountDistinct(
  count: bigint,
  policy: DpParameters,
  rng: Rng,
  options: NoiseOptions,
): bigint {
  const sens = sensitivity("count-distinct", policy, options.groups);
  return laplaceMechanism(count, sens, epsilonOf(policy, options), rng);
}

/** SUM of values clamped to policy.clamp, as an integer in units of 10^-places. */
export function noisySum(
  sum: bigint,
  policy: DpParameters,
  rng: Rng,
  options: NoiseOptions & { places: number },
): bigint {
  const sens = sensitivity("sum", policy, options.groups, options.places);
  return laplaceMechanism(sum, sens, epsilonOf(policy, options), rng);
}

/**
 * AVG as noisy SUM / noisy COUNT(*): the epsilon is split in half between the two (sequential
 * composition), the division is post-processing. The average is clamped into the clamp range
 * and the divisor to at least 1 (also post-processing: they cost no privacy).
 */
export function noisyAverage(
  sum: bigint,
  count: bigint,
  policy: DpParameters,
  rng: Rng,
  options: NoiseOptions & { places: number },
): { sum: bigint; count: bigint; average: number } {
  const half = halve(epsilonOf(policy, options));
  const noisedSum = noisySum(sum, policy, rng, { ...options, epsilon: half });
  const noisedCount = noisyCount(count, policy, rng, { ...options, epsilon: half });
  return {
    sum: noisedSum,
    count: noisedCount,
    average: averageOf(noisedSum, noisedCount, policy, options.places),
  };
}

const halve = (e: Rational): Rational => rational(e.num, e.den * 2n);

/** Post-processing of a noisy sum (units of 10^-places) and a noisy count into an average. */
export function averageOf(sum: bigint, count: bigint, policy: DpParameters, places: number): number {
  const divisor = count < 1n ? 1n : count;
  const range = clampRange(policy, places);
  const raw = toNumber(rational(sum, divisor * 10n ** BigInt(places)));
  const lower = toNumber(rational(range.lower, 10n ** BigInt(places)));
  const upper = toNumber(rational(range.upper, 10n ** BigInt(places)));
  return Math.min(upper, Math.max(lower, raw));
}

/**
 * Noisy-threshold partition selection (Wilson et al., "Differentially Private SQL with Bounded
 * User Contribution", PoPETs 2020; Google's differential-privacy library, Laplace partition
 * selection). A group whose key only one identity brings has a true count of at most
 * `perGroup`; that identity brings at most `maxGroups` such groups. With discrete Laplace noise
 * of scale b (p = exp(-1/b)), P(perGroup + Z >= tau) = p^(tau - perGroup) / (1 + p), so
 *   tau = perGroup + ceil(b * ln(maxGroups / delta))
 * keeps every such group out with total probability <= delta. Dropping the 1/(1+p) factor leaves
 * a margin of at least 2x, far above the double rounding of b * ln(...). A floor (e.g. the
 * contract's k) may only raise tau.
 */
export function partitionThreshold(args: {
  scale: Rational;
  perGroup: bigint;
  maxGroups: bigint;
  delta: number;
  minimum?: number;
}): bigint {
  const delta = resolveDelta(args.delta);
  const b = toNumber(args.scale);
  const margin = Math.ceil(b * Math.log(Number(args.maxGroups) / delta));
  if (!Number.isSafeInteger(margin)) throw new DpPolicyError("threshold out of range");
  const tau = args.perGroup + BigInt(margin);
  const min = args.minimum ?? 0;
  if (!Number.isSafeInteger(Math.ceil(min))) throw new DpPolicyError("threshold minimum out of range");
  const floor = BigInt(Math.ceil(min));
  return tau > floor ? tau : floor;
}

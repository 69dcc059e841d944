/**
 * Contribution bounding: what makes a sensitivity finite. Each identity keeps at most
 * maxRowsPerIdentity rows and each summed value is clamped into the contract's range, both
 * BEFORE aggregation. The enclave normally does this in SQL (docs/DIFFERENTIAL-PRIVACY.md shows
 * the shape); these helpers state the rules once and do it for rows already in memory.
 */
import type { DpParameters } from "../../protocol/contract/types.js";
import { DpPolicyError } from "./errors.js";
import type { Rng } from "./random.js";
import { toFixedPoint } from "./rational.js";

/** The policy's per-identity row bound, validated (a positive safe integer). */
export function maxRowsPerIdentity(policy: DpParameters): bigint {
  const m = policy.maxRowsPerIdentity;
  if (m === undefined) throw new DpPolicyError("policy: maxRowsPerIdentity required");
  if (!Number.isSafeInteger(m) || m < 1)
    throw new DpPolicyError("policy: maxRowsPerIdentity not a positive integer");
  return BigInt(m);
}

/** Clamping range in fixed-point units of 10^-places, rounded inwards so it never widens. */
export interface ScaledRange {
  lower: bigint;
  upper: bigint;
  places: number;
}

export function clampRange(policy: DpParameters, places: number): ScaledRange {
  const clamp = policy.clamp;
  if (!clamp) throw new DpPolicyError("policy: clamp required");
  if (!Number.isFinite(clamp.lower) || !Number.isFinite(clamp.upper)) {
    throw new DpPolicyError("policy: clamp bounds not finite");
  }
  const lower = toFixedPoint(clamp.lower, places, "up");
  const upper = toFixedPoint(clamp.upper, places, "down");
  if (lower > upper) throw new DpPolicyError("policy: clamp range empty");
  return { lower, upper, places };
}

/** The largest absolute value a clamped value can take: one row's contribution to a sum. */
export function clampBound(range: ScaledRange): bigint {
  const a = range.lower < 0n ? -range.lower : range.lower;
  const b = range.upper < 0n ? -range.upper : range.upper;
  return a > b ? a : b;
}

export function clampValue(value: bigint, range: ScaledRange): bigint {
  if (value < range.lower) return range.lower;
  if (value > range.upper) return range.upper;
  return value;
}

/**
 * Keeps at most `maxRows` rows per identity, chosen uniformly at random among that identity's
 * rows (a partial Fisher-Yates shuffle per identity); kept rows stay in input order. The choice
 * for one identity depends only on that identity's rows and the RNG, as contribution bounding
 * must.
 */
export function boundContributions<T>(
  rows: readonly T[],
  identityOf: (row: T) => string,
  maxRows: bigint,
  rng: Rng,
): T[] {
  const byIdentity = new Map<string, number[]>();
  rows.forEach((row, i) => {
    const id = identityOf(row);
    const list = byIdentity.get(id);
    if (list) list.push(i);
    else byIdentity.set(id, [i]);
  });
  const keep = new Set<number>();
  for (const indexes of byIdentity.values()) {
    const n = indexes.length;
    const take = BigInt(n) < maxRows ? n : Number(maxRows);
    for (let i = 0; i < take; i++) {
      const j = i + Number(rng.below(BigInt(n - i)));
      [indexes[i], indexes[j]] = [indexes[j]!, indexes[i]!];
      keep.add(indexes[i]!);
    }
  }
  return rows.filter((_, i) => keep.has(i));
}
